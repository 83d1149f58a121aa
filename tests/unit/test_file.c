/* aetherbus - Apache-2.0
 *
 * Unit tests of ab_file_read(): a file up to the room is read whole, one
 * byte more is refused (not cut), and what is not a regular file (a FIFO
 * that would block, a directory) or not there is refused by name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ab_file.h"

static char dir[64];

static void setup(void) {
        snprintf(dir, sizeof(dir), "/tmp/ab-test-file.XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void) {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        cr_assert_eq(system(cmd), 0);
}

TestSuite(ab_file, .init = setup, .fini = teardown);

static const char *put(const char *name, const char *data, size_t len) {
        static char path[128];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        cr_assert_not_null(fp = fopen(path, "wb"));
        cr_assert_eq(fwrite(data, 1, len, fp), len);
        cr_assert_eq(fclose(fp), 0);
        return path;
}

Test(ab_file, reads_up_to_the_room_and_refuses_a_byte_more) {
        char buf[8], errstr[256];
        size_t len = 99;
        mode_t mode = 0;
        const char *p;

        p = put("seven", "1234567", 7);
        cr_assert_eq(chmod(p, 0640), 0);
        cr_assert_eq(ab_file_read(p, buf, sizeof(buf), &len, &mode, errstr,
                                  sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_eq(len, 7);
        cr_assert_str_eq(buf, "1234567", "NUL-terminated");
        cr_assert_eq(mode & 0777, 0640);
        p = put("eight", "12345678", 8);
        cr_assert_eq(ab_file_read(p, buf, sizeof(buf), &len, NULL, errstr,
                                  sizeof(errstr)),
                     AB_ERR_TOO_LARGE);
        cr_assert(strstr(errstr, "larger than 7 bytes"), "%s", errstr);
        p = put("empty", "", 0);
        cr_assert_eq(ab_file_read(p, buf, sizeof(buf), &len, NULL, errstr,
                                  sizeof(errstr)),
                     AB_OK);
        cr_assert_eq(len, 0);
        cr_assert_str_eq(buf, "");
}

Test(ab_file, refuses_what_is_not_a_regular_file_without_blocking) {
        char buf[64], errstr[256], path[128];
        size_t len;

        snprintf(path, sizeof(path), "%s/fifo", dir);
        cr_assert_eq(mkfifo(path, 0600), 0);
        /* no writer: a blocking open or read would hang the test */
        cr_assert_eq(ab_file_read(path, buf, sizeof(buf), &len, NULL, errstr,
                                  sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "not a regular file"), "%s", errstr);
        cr_assert_eq(ab_file_read(dir, buf, sizeof(buf), &len, NULL, errstr,
                                  sizeof(errstr)),
                     AB_ERR_INVALID);
        snprintf(path, sizeof(path), "%s/missing", dir);
        cr_assert_eq(ab_file_read(path, buf, sizeof(buf), &len, NULL, errstr,
                                  sizeof(errstr)),
                     AB_ERR_NOT_FOUND);
        cr_assert(strstr(errstr, path), "%s", errstr);
}
