/* aetherbus - Apache-2.0
 *
 * Unit tests of audit_checkpoint: byte-for-byte agreement with
 * golang.org/x/mod/sumdb/note on its published keys and signatures, the
 * sign/open round trip, every tampering and wrong key refused, the key
 * parsers' refusals (each truncation and each changed byte of a key), the
 * key files, and the C2SP checkpoint body.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ab_log.h"
#include "audit_checkpoint.h"

/* The keys and note of sumdb/note's own tests (note_test.go). */
#define PETER_SKEY                                                             \
        "PRIVATE+KEY+PeterNeumann+c74f20a3+"                                   \
        "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
#define PETER_VKEY                                                             \
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define ENOCH_VKEY                                                             \
        "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
#define NOTE_TEXT                                                              \
        "If you think cryptography is the answer to your problem,\n"           \
        "then you don't know what your problem is.\n"
#define PETER_SIG                                                              \
        "\xe2\x80\x94 PeterNeumann "                                           \
        "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvq" \
        "fqdngotpRZb6KE6RyyBwJnAM=\n"
#define ENOCH_SIG                                                              \
        "\xe2\x80\x94 EnochRoot "                                              \
        "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG0" \
        "1oOTGwnWLox33WWd1RvMc+QQ=\n"

/* The C2SP tlog-checkpoint example body. */
#define C2SP_BODY                                                              \
        "example.com/behind-the-sofa\n20852163\n"                              \
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

static audit_signer_t *signer(const char *skey) {
        char errstr[256];
        audit_signer_t *s = audit_signer_new(skey, errstr, sizeof(errstr));

        cr_assert(s, "%s: %s", skey, errstr);
        return s;
}

static audit_verifier_t *verifier(const char *vkey) {
        char errstr[256];
        audit_verifier_t *v = audit_verifier_new(vkey, errstr, sizeof(errstr));

        cr_assert(v, "%s: %s", vkey, errstr);
        return v;
}

static ab_err_t open_str(const audit_verifier_t *v, const char *msg) {
        char errstr[256];
        size_t tlen;

        return audit_note_open(v, msg, strlen(msg), &tlen, errstr,
                               sizeof(errstr));
}

static char tmpdir[64];

static void mktmp(void) {
        strcpy(tmpdir, "/tmp/ab-audit-ckpt-XXXXXX");
        cr_assert(mkdtemp(tmpdir));
}

static void rmtmp(void) {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        cr_assert_eq(system(cmd), 0);
}

static void write_file(const char *path, const char *s, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

        cr_assert(fd >= 0);
        cr_assert_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
        cr_assert_eq(fchmod(fd, mode), 0);
        cr_assert_eq(close(fd), 0);
}


/*
 * Agreement with sumdb/note
 */

Test(audit_checkpoint, signs_as_sumdb_note_does) {
        audit_signer_t *s = signer(PETER_SKEY);
        char vkey[AUDIT_VKEY_MAX], errstr[256], *msg;
        size_t len;

        cr_assert_str_eq(audit_signer_name(s), "PeterNeumann");
        cr_assert_eq(audit_signer_key_id(s), 0xc74f20a3);
        cr_assert_eq(audit_signer_vkey(s, vkey, sizeof(vkey), errstr,
                                       sizeof(errstr)),
                     AB_OK);
        cr_assert_str_eq(vkey, PETER_VKEY);
        /* Ed25519 is deterministic: the very bytes of note_test.go */
        cr_assert_eq(audit_note_sign(s, NOTE_TEXT, strlen(NOTE_TEXT), &msg,
                                     &len, errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_str_eq(msg, NOTE_TEXT "\n" PETER_SIG);
        cr_assert_eq(len, strlen(msg));
        free(msg);
        audit_signer_destroy(s);
}

Test(audit_checkpoint, opens_sumdb_notes_ignoring_other_keys) {
        audit_verifier_t *peter = verifier(PETER_VKEY);
        audit_verifier_t *enoch = verifier(ENOCH_VKEY);
        const char *both = NOTE_TEXT "\n" PETER_SIG ENOCH_SIG;
        char errstr[256];
        size_t tlen;

        cr_assert_eq(audit_verifier_key_id(enoch), 0xaf0cfe78);
        cr_assert_eq(audit_note_open(peter, both, strlen(both), &tlen, errstr,
                                     sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_eq(tlen, strlen(NOTE_TEXT));
        cr_assert_eq(audit_note_open(enoch, both, strlen(both), &tlen, errstr,
                                     sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_eq(open_str(enoch, NOTE_TEXT "\n" PETER_SIG),
                     AB_ERR_UNKNOWN);
        /* a repeated signature is dropped, not an error */
        cr_assert_eq(open_str(peter, NOTE_TEXT "\n" PETER_SIG PETER_SIG),
                     AB_OK);
        audit_verifier_destroy(peter);
        audit_verifier_destroy(enoch);
}


/*
 * Signed checkpoints
 */

static audit_checkpoint_t sample_cp(void) {
        audit_checkpoint_t cp;
        int i;

        memset(&cp, 0, sizeof(cp));
        strcpy(cp.origin, "audit.aetherbus.example/log");
        cp.size = 1234567;
        for (i = 0; i < AUDIT_HASH_LEN; i++) {
                cp.root[i] = (uint8_t)(i * 7 + 1);
        }
        return cp;
}

Test(audit_checkpoint, sign_open_round_trip) {
        char skey[AUDIT_SKEY_MAX], vkey[AUDIT_VKEY_MAX], errstr[256], *msg;
        audit_checkpoint_t cp = sample_cp(), got;
        audit_signer_t *s;
        audit_verifier_t *v;
        size_t len;

        cr_assert_eq(audit_key_generate(cp.origin, skey, sizeof(skey), vkey,
                                        sizeof(vkey), errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert(!strncmp(skey, "PRIVATE+KEY+audit.aetherbus.example/log+",
                           40));
        s = signer(skey);
        v = verifier(vkey);
        cr_assert_eq(audit_signer_key_id(s), audit_verifier_key_id(v));
        cr_assert_eq(audit_checkpoint_sign(s, &cp, &msg, &len, errstr,
                                           sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert(!strncmp(msg, "audit.aetherbus.example/log\n1234567\n", 36),
                  "%s", msg);
        cr_assert(strstr(msg, "=\n\n\xe2\x80\x94 audit.aetherbus.example/log "),
                  "%s", msg);
        cr_assert_eq(audit_checkpoint_open(v, cp.origin, msg, len, &got,
                                           errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_str_eq(got.origin, cp.origin);
        cr_assert_eq(got.size, cp.size);
        cr_assert(memcmp(got.root, cp.root, AUDIT_HASH_LEN) == 0);
        cr_assert_eq(audit_checkpoint_open(v, NULL, msg, len, &got, errstr,
                                           sizeof(errstr)),
                     AB_OK);
        cr_assert_eq(audit_checkpoint_open(v, "other.example/log", msg, len,
                                           &got, errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "other.example/log"), "%s", errstr);
        free(msg);
        audit_signer_destroy(s);
        audit_verifier_destroy(v);
}

Test(audit_checkpoint, tampering_and_wrong_keys_fail) {
        char skey[AUDIT_SKEY_MAX], vkey[AUDIT_VKEY_MAX], vkey2[AUDIT_VKEY_MAX];
        char errstr[256], *msg, *bad;
        audit_checkpoint_t cp = sample_cp(), got;
        audit_signer_t *s;
        audit_verifier_t *v, *v2, *v3;
        size_t len, i, sigpos;

        cr_assert_eq(audit_key_generate("log", skey, sizeof(skey), vkey,
                                        sizeof(vkey), errstr, sizeof(errstr)),
                     AB_OK);
        s = signer(skey);
        v = verifier(vkey);
        cr_assert_eq(audit_checkpoint_sign(s, &cp, &msg, &len, errstr,
                                           sizeof(errstr)),
                     AB_OK);
        bad = strdup(msg);
        cr_assert(bad);
        /* any change to the body: origin, size, root, a line added */
        for (i = 0; msg[i] != '\n' || msg[i + 1] != '\n'; i++) {
                if (msg[i] == '\n') {
                        continue;
                }
                bad[i] = msg[i] == '1' ? '2' : msg[i] == 'A' ? 'B' : '1';
                cr_assert_neq(audit_checkpoint_open(v, NULL, bad, len, &got,
                                                    errstr, sizeof(errstr)),
                              AB_OK, "body byte %zu changed", i);
                bad[i] = msg[i];
        }
        /* the signature: a key id byte, then a signature byte */
        sigpos = (size_t)(strstr(msg, "\xe2\x80\x94 log ") - msg) + 8;
        bad[sigpos + 1] = bad[sigpos + 1] == 'A' ? 'B' : 'A';
        cr_assert_eq(audit_checkpoint_open(v, NULL, bad, len, &got, errstr,
                                           sizeof(errstr)),
                     AB_ERR_UNKNOWN, "%s", errstr);
        bad[sigpos + 1] = msg[sigpos + 1];
        bad[sigpos + 40] = bad[sigpos + 40] == 'A' ? 'B' : 'A';
        cr_assert_eq(audit_checkpoint_open(v, NULL, bad, len, &got, errstr,
                                           sizeof(errstr)),
                     AB_ERR_INVALID, "%s", errstr);
        cr_assert(strstr(errstr, "invalid signature"), "%s", errstr);
        bad[sigpos + 40] = msg[sigpos + 40];
        cr_assert_eq(audit_checkpoint_open(v, NULL, bad, len, &got, errstr,
                                           sizeof(errstr)),
                     AB_OK);
        /* another key of the same name, and another name */
        cr_assert_eq(audit_key_generate("log", skey, sizeof(skey), vkey2,
                                        sizeof(vkey2), errstr, sizeof(errstr)),
                     AB_OK);
        v2 = verifier(vkey2);
        cr_assert_eq(audit_checkpoint_open(v2, NULL, msg, len, &got, errstr,
                                           sizeof(errstr)),
                     AB_ERR_UNKNOWN);
        cr_assert(strstr(errstr, "no signature by key log+"), "%s", errstr);
        v3 = verifier(PETER_VKEY);
        cr_assert_eq(audit_checkpoint_open(v3, NULL, msg, len, &got, errstr,
                                           sizeof(errstr)),
                     AB_ERR_UNKNOWN);
        cr_assert_eq(got.size, 0, "a refused checkpoint leaves no values");
        free(bad);
        free(msg);
        audit_signer_destroy(s);
        audit_verifier_destroy(v);
        audit_verifier_destroy(v2);
        audit_verifier_destroy(v3);
}

Test(audit_checkpoint, malformed_notes_are_refused) {
        audit_verifier_t *v = verifier(PETER_VKEY);
        char many[128 * 101 + 256];
        size_t o;
        int i;

        cr_assert_eq(open_str(v, NOTE_TEXT PETER_SIG), AB_ERR_MALFORMED);
        cr_assert_eq(open_str(v, NOTE_TEXT "\n"), AB_ERR_MALFORMED);
        cr_assert_eq(open_str(v, NOTE_TEXT "\n\xe2\x80\x94 PeterNeumann x08go"),
                     AB_ERR_MALFORMED);
        cr_assert_eq(open_str(v, NOTE_TEXT "\n-- PeterNeumann AAAAAAAA\n"),
                     AB_ERR_MALFORMED);
        cr_assert_eq(open_str(v, NOTE_TEXT "\n\xe2\x80\x94 PeterNeumann\n"),
                     AB_ERR_MALFORMED);
        cr_assert_eq(open_str(v, NOTE_TEXT "\n\xe2\x80\x94 PeterNeumann AAAA\n"),
                     AB_ERR_MALFORMED, "under 5 signature bytes");
        cr_assert_eq(open_str(v, NOTE_TEXT "\n\xe2\x80\x94 Peter+Neumann "
                                 "AAAAAAAA\n"),
                     AB_ERR_MALFORMED);
        cr_assert_eq(open_str(v, NOTE_TEXT "\n\xe2\x80\x94 PeterNeumann "
                                 "AAAAAAB=\n"),
                     AB_ERR_MALFORMED, "non-canonical base64");
        cr_assert_eq(open_str(v, "tab\there\n\n" PETER_SIG), AB_ERR_MALFORMED);
        cr_assert_eq(open_str(v, "bad \xc0\xaf utf-8\n\n" PETER_SIG),
                     AB_ERR_MALFORMED);
        /* a short signature by the known key is a bad signature */
        cr_assert_eq(open_str(v, NOTE_TEXT "\n\xe2\x80\x94 PeterNeumann "
                                 "x08goxxx\n"),
                     AB_ERR_INVALID);
        /* over 100 signature lines, even unknown ones */
        o = (size_t)snprintf(many, sizeof(many), "%s\n", NOTE_TEXT);
        for (i = 0; i < 101; i++) {
                o += (size_t)snprintf(many + o, sizeof(many) - o,
                                      "\xe2\x80\x94 k%d AAAAAAAA\n", i);
        }
        cr_assert_eq(open_str(v, many), AB_ERR_MALFORMED);
        o = (size_t)snprintf(many, sizeof(many), "%s\n" PETER_SIG, NOTE_TEXT);
        for (i = 0; i < 99; i++) {
                o += (size_t)snprintf(many + o, sizeof(many) - o,
                                      "\xe2\x80\x94 k%d AAAAAAAA\n", i);
        }
        cr_assert_eq(open_str(v, many), AB_OK);
        audit_verifier_destroy(v);
}

Test(audit_checkpoint, sign_refuses_bad_text) {
        audit_signer_t *s = signer(PETER_SKEY);
        char errstr[256], *msg = (char *)"x";
        size_t len;

        cr_assert_eq(audit_note_sign(s, "abc", 3, &msg, &len, errstr,
                                     sizeof(errstr)),
                     AB_ERR_MALFORMED);
        cr_assert_null(msg);
        cr_assert_eq(audit_note_sign(s, "", 0, &msg, &len, errstr,
                                     sizeof(errstr)),
                     AB_ERR_MALFORMED);
        cr_assert_eq(audit_note_sign(s, "a\rb\n", 4, &msg, &len, errstr,
                                     sizeof(errstr)),
                     AB_ERR_MALFORMED);
        audit_signer_destroy(s);
}


/*
 * Keys
 */

static void assert_bad_vkey(const char *k, size_t len) {
        char buf[AUDIT_VKEY_MAX + 64], errstr[256];
        audit_verifier_t *v;

        memcpy(buf, k, len);
        buf[len] = '\0';
        v = audit_verifier_new(buf, errstr, sizeof(errstr));
        cr_assert_null(v, "verifier key \"%s\" accepted", buf);
}

static void assert_bad_skey(const char *k, size_t len) {
        char buf[AUDIT_SKEY_MAX + 64], errstr[256];
        audit_signer_t *s;

        memcpy(buf, k, len);
        buf[len] = '\0';
        s = audit_signer_new(buf, errstr, sizeof(errstr));
        cr_assert_null(s, "signer key \"%s\" accepted", buf);
}

/* As sumdb/note's tests: no part of a key and no key with one byte
 * changed is a key. */
Test(audit_checkpoint, key_parsers_refuse_every_mangling) {
        char b[sizeof(PETER_SKEY)];
        size_t i, j, n;

        n = strlen(PETER_VKEY);
        memcpy(b, PETER_VKEY, n + 1);
        for (i = 0; i <= n; i++) {
                for (j = i + 1; j <= n; j++) {
                        if (i != 0 || j != n) {
                                assert_bad_vkey(b + i, j - i);
                        }
                }
        }
        for (i = 0; i < n; i++) {
                b[i]++;
                assert_bad_vkey(b, n);
                b[i]--;
        }
        n = strlen(PETER_SKEY);
        memcpy(b, PETER_SKEY, n + 1);
        for (i = 0; i <= n; i++) {
                for (j = i + 1; j <= n; j++) {
                        if (i != 0 || j != n) {
                                assert_bad_skey(b + i, j - i);
                        }
                }
        }
        for (i = 0; i < n; i++) {
                b[i]++;
                assert_bad_skey(b, n);
                b[i]--;
        }
}

Test(audit_checkpoint, key_parsers_say_why) {
        char errstr[256];

        /* sumdb/note's: wrong key length, unknown algorithm (ids fixed);
         * the first is non-canonical base64 too, which Go lets pass */
        cr_assert_null(audit_verifier_new(
            "PeterNeumann+cc469956+"
            "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            errstr, sizeof(errstr)));
        cr_assert(strstr(errstr, "not base64"), "%s", errstr);
        cr_assert_null(audit_verifier_new(
            "PeterNeumann+cc469956+"
            "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            errstr, sizeof(errstr)));
        cr_assert(strstr(errstr, "31 bytes, not 32"), "%s", errstr);
        cr_assert_null(audit_verifier_new(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            errstr, sizeof(errstr)));
        cr_assert(strstr(errstr, "not Ed25519"), "%s", errstr);
        cr_assert_null(audit_verifier_new(
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            errstr, sizeof(errstr)));
        cr_assert(strstr(errstr, "does not match"), "%s", errstr);
        cr_assert_null(audit_verifier_new(
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            errstr, sizeof(errstr)));
        cr_assert(strstr(errstr, "invalid name"), "%s", errstr);
        /* upper-case hex is a key id too */
        audit_verifier_destroy(verifier(
            "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"));
        cr_assert_null(audit_signer_new(PETER_VKEY, errstr, sizeof(errstr)));
        cr_assert(strstr(errstr, "PRIVATE+KEY+"), "%s", errstr);
        cr_assert_null(audit_signer_new(PETER_SKEY "\n", errstr,
                                        sizeof(errstr)));
}

Test(audit_checkpoint, key_names_follow_the_note_rules) {
        char skey[AUDIT_SKEY_MAX], vkey[AUDIT_VKEY_MAX], errstr[256];
        char longname[AUDIT_NAME_MAX + 2];
        static const char *bad[] = {
                "",       "a b",          "a+b",          "a\tb",
                "a\nb",   "a\xc2\xa0" "b", "a\xe3\x80\x80" "b",
                "\xff",   "a\xe2\x80\xa8" "b",
        };
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cr_assert_eq(audit_key_generate(bad[i], skey, sizeof(skey),
                                                vkey, sizeof(vkey), errstr,
                                                sizeof(errstr)),
                             AB_ERR_INVALID, "name %zu accepted", i);
        }
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        cr_assert_eq(audit_key_generate(longname, skey, sizeof(skey), vkey,
                                        sizeof(vkey), errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        longname[AUDIT_NAME_MAX] = '\0';
        cr_assert_eq(audit_key_generate(longname, skey, sizeof(skey), vkey,
                                        sizeof(vkey), errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        audit_signer_destroy(signer(skey));
        audit_verifier_destroy(verifier(vkey));
        /* UTF-8 names are names */
        cr_assert_eq(audit_key_generate("\xc3\xa9t\xc3\xa9", skey,
                                        sizeof(skey), vkey, sizeof(vkey),
                                        errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_eq(audit_key_generate("log", skey, 20, vkey, sizeof(vkey),
                                        errstr, sizeof(errstr)),
                     AB_ERR_TOO_LARGE);
}

Test(audit_checkpoint, keygen_writes_a_private_file_once) {
        char path[128], vkey[AUDIT_VKEY_MAX], vkey2[AUDIT_VKEY_MAX];
        char errstr[256], buf[256];
        audit_signer_t *s;
        struct stat st;
        FILE *f;

        mktmp();
        snprintf(path, sizeof(path), "%s/signing.key", tmpdir);
        cr_assert_eq(audit_keygen("audit.example/log", path, vkey,
                                  sizeof(vkey), errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0600);
        f = fopen(path, "r");
        cr_assert(f);
        cr_assert(fgets(buf, sizeof(buf), f));
        fclose(f);
        cr_assert(!strncmp(buf, "PRIVATE+KEY+audit.example/log+", 30));
        cr_assert_eq(buf[strlen(buf) - 1], '\n');
        s = audit_signer_load(path, errstr, sizeof(errstr));
        cr_assert(s, "%s", errstr);
        cr_assert_eq(audit_signer_vkey(s, vkey2, sizeof(vkey2), errstr,
                                       sizeof(errstr)),
                     AB_OK);
        cr_assert_str_eq(vkey2, vkey);
        audit_signer_destroy(s);
        /* never over an existing key */
        cr_assert_eq(audit_keygen("audit.example/log", path, vkey2,
                                  sizeof(vkey2), errstr, sizeof(errstr)),
                     AB_ERR_IO);
        cr_assert(strstr(errstr, "exists"), "%s", errstr);
        s = audit_signer_load(path, errstr, sizeof(errstr));
        cr_assert(s);
        cr_assert_eq(audit_signer_vkey(s, vkey2, sizeof(vkey2), errstr,
                                       sizeof(errstr)),
                     AB_OK);
        cr_assert_str_eq(vkey2, vkey, "the first key survives");
        audit_signer_destroy(s);
        rmtmp();
}

Test(audit_checkpoint, signer_load_refuses_what_is_not_one_key) {
        char path[128], errstr[256], logpath[128], log[1024];
        audit_signer_t *s;
        ssize_t n;
        int fd;

        mktmp();
        snprintf(path, sizeof(path), "%s/k", tmpdir);
        cr_assert_null(audit_signer_load(path, errstr, sizeof(errstr)));
        cr_assert(strstr(errstr, "No such file"), "%s", errstr);
        cr_assert_null(audit_signer_load(tmpdir, errstr, sizeof(errstr)));
        cr_assert(strstr(errstr, "not a regular file"), "%s", errstr);
        write_file(path, PETER_SKEY "\n\n", 0600);
        cr_assert_null(audit_signer_load(path, errstr, sizeof(errstr)));
        write_file(path, PETER_SKEY "\n" PETER_SKEY "\n", 0600);
        cr_assert_null(audit_signer_load(path, errstr, sizeof(errstr)));
        write_file(path, " " PETER_SKEY "\n", 0600);
        cr_assert_null(audit_signer_load(path, errstr, sizeof(errstr)));
        write_file(path, PETER_VKEY "\n", 0600);
        cr_assert_null(audit_signer_load(path, errstr, sizeof(errstr)));
        write_file(path, "", 0600);
        cr_assert_null(audit_signer_load(path, errstr, sizeof(errstr)));
        write_file(path, PETER_SKEY, 0600);
        s = audit_signer_load(path, errstr, sizeof(errstr));
        cr_assert(s, "no final newline is fine: %s", errstr);
        audit_signer_destroy(s);
        /* readable by others: loads, with a warning */
        snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
        fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
        cr_assert(fd >= 0);
        ab_log_init("test", AB_LOG_WARN);
        ab_log_set_fd(fd);
        write_file(path, PETER_SKEY "\n", 0644);
        s = audit_signer_load(path, errstr, sizeof(errstr));
        ab_log_set_fd(-1);
        cr_assert(s, "%s", errstr);
        audit_signer_destroy(s);
        n = pread(fd, log, sizeof(log) - 1, 0);
        cr_assert(n > 0);
        log[n] = '\0';
        cr_assert(strstr(log, "chmod 600"), "%s", log);
        close(fd);
        rmtmp();
}


/*
 * Checkpoint bodies
 */

Test(audit_checkpoint, c2sp_example_body_round_trips) {
        audit_checkpoint_t cp;
        char buf[512], errstr[256];
        size_t len;

        cr_assert_eq(audit_checkpoint_parse(C2SP_BODY, strlen(C2SP_BODY), &cp,
                                            errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_str_eq(cp.origin, "example.com/behind-the-sofa");
        cr_assert_eq(cp.size, 20852163);
        cr_assert_eq(cp.root[0], 0x0a);
        cr_assert_eq(audit_checkpoint_format(&cp, buf, sizeof(buf), &len,
                                             errstr, sizeof(errstr)),
                     AB_OK);
        cr_assert_str_eq(buf, C2SP_BODY);
        cr_assert_eq(len, strlen(C2SP_BODY));
        cr_assert_eq(audit_checkpoint_format(&cp, buf, 20, &len, errstr,
                                             sizeof(errstr)),
                     AB_ERR_TOO_LARGE);
        cp.origin[0] = '\0';
        cr_assert_eq(audit_checkpoint_format(&cp, buf, sizeof(buf), &len,
                                             errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        strcpy(cp.origin, "two\nlines");
        cr_assert_eq(audit_checkpoint_format(&cp, buf, sizeof(buf), &len,
                                             errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
}

Test(audit_checkpoint, body_parser_accepts_and_refuses) {
#define ROOT "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
        static const struct {
                const char *s;
                ab_err_t err;
                uint64_t size;
        } rows[] = {
                {"o\n0\n" ROOT "\n", AB_OK, 0},
                {"o\n18446744073709551615\n" ROOT "\n", AB_OK, UINT64_MAX},
                {"o\n5\n" ROOT "\next one\next two\n", AB_OK, 5},
                {"o\n18446744073709551616\n" ROOT "\n", AB_ERR_MALFORMED, 0},
                {"o\n05\n" ROOT "\n", AB_ERR_MALFORMED, 0},
                {"o\n-5\n" ROOT "\n", AB_ERR_MALFORMED, 0},
                {"o\n+5\n" ROOT "\n", AB_ERR_MALFORMED, 0},
                {"o\n5 \n" ROOT "\n", AB_ERR_MALFORMED, 0},
                {"o\n5\n" ROOT, AB_ERR_MALFORMED, 0},
                {"o\n5\n", AB_ERR_MALFORMED, 0},
                {"\n5\n" ROOT "\n", AB_ERR_MALFORMED, 0},
                {"o\n5\n" ROOT "\n\n", AB_ERR_MALFORMED, 0},
                {"o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n",
                 AB_ERR_MALFORMED, 0},
                {"o\n5\n" ROOT "AAAA\n", AB_ERR_MALFORMED, 0},
                {"o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",
                 AB_ERR_MALFORMED, 0},
                {"o\x01\n5\n" ROOT "\n", AB_ERR_MALFORMED, 0},
        };
        audit_checkpoint_t cp;
        char errstr[256];
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                cr_assert_eq(audit_checkpoint_parse(rows[i].s,
                                                    strlen(rows[i].s), &cp,
                                                    errstr, sizeof(errstr)),
                             rows[i].err, "row %zu: %s", i, errstr);
                if (rows[i].err == AB_OK) {
                        cr_assert_eq(cp.size, rows[i].size);
                        cr_assert_str_eq(cp.origin, "o");
                }
        }
#undef ROOT
}

Test(audit_checkpoint, tlog_proof_carries_index_path_and_checkpoint) {
        audit_merkle_proof_t p;
        char errstr[256], *out;
        size_t len;
        int i;

        memset(&p, 0, sizeof(p));
        p.cnt = 2;
        for (i = 0; i < AUDIT_HASH_LEN; i++) {
                p.hash[1][i] = 0xff;
        }
        cr_assert_eq(audit_tlog_proof_format(73894, &p, C2SP_BODY "\n" PETER_SIG,
                                             strlen(C2SP_BODY "\n" PETER_SIG),
                                             &out, &len, errstr,
                                             sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_str_eq(out, "c2sp.org/tlog-proof@v1\n"
                              "index 73894\n"
                              "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                              "//////////////////////////////////////////8=\n"
                              "\n" C2SP_BODY "\n" PETER_SIG);
        cr_assert_eq(len, strlen(out));
        free(out);
        /* a leaf alone in its tree: no path lines */
        p.cnt = 0;
        cr_assert_eq(audit_tlog_proof_format(0, &p, C2SP_BODY "\n" PETER_SIG,
                                             strlen(C2SP_BODY "\n" PETER_SIG),
                                             &out, &len, errstr,
                                             sizeof(errstr)),
                     AB_OK);
        cr_assert(!strncmp(out, "c2sp.org/tlog-proof@v1\nindex 0\n\n", 32));
        free(out);
        cr_assert_eq(audit_tlog_proof_format(0, &p, C2SP_BODY, 5, &out, &len,
                                             errstr, sizeof(errstr)),
                     AB_ERR_MALFORMED);
        cr_assert_null(out);
}
