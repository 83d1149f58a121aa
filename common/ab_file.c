/* aetherbus - Apache-2.0
 *
 * ab_file: see ab_file.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ab_file.h"

ab_err_t ab_file_read(const char *path, char *buf, size_t size, size_t *lenp,
                      mode_t *modep, char *errstr, size_t errstr_size) {
        struct stat st;
        size_t len = 0;
        ssize_t n;
        char extra;
        int fd, e;

        if (size < 1) {
                ab_errstr_set(errstr, errstr_size, "%s: no room to read it",
                              path);
                return AB_ERR_INVALID;
        }
        if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
                e = errno;
                ab_errstr_set(errstr, errstr_size, "%s: %s", path,
                              strerror(e));
                return e == ENOENT ? AB_ERR_NOT_FOUND : AB_ERR_IO;
        }
        if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
                ab_errstr_set(errstr, errstr_size, "%s: not a regular file",
                              path);
                close(fd);
                return AB_ERR_INVALID;
        }
        if (modep) {
                *modep = st.st_mode;
        }
        for (;;) {
                /* the byte past the room tells "exactly full" from "larger" */
                n = len < size - 1 ? read(fd, buf + len, size - 1 - len)
                                   : read(fd, &extra, 1);
                if (n < 0 && errno == EINTR) {
                        continue;
                }
                if (n < 0) {
                        e = errno;
                        close(fd);
                        ab_errstr_set(errstr, errstr_size, "%s: %s", path,
                                      strerror(e));
                        return AB_ERR_IO;
                }
                if (n == 0) {
                        break;
                }
                if (len == size - 1) {
                        close(fd);
                        ab_errstr_set(errstr, errstr_size,
                                      "%s: larger than %zu bytes", path,
                                      size - 1);
                        return AB_ERR_TOO_LARGE;
                }
                len += (size_t)n;
        }
        close(fd);
        buf[len] = '\0';
        *lenp    = len;
        return AB_OK;
}
