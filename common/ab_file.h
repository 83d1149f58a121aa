/* aetherbus - Apache-2.0
 *
 * ab_file: reading a small file whole (keys, client tables, checkpoints
 * given on the command line), with a bound: a file that is not regular
 * (a FIFO or a device would block or never end) or that is larger than
 * the caller's buffer is refused, not read in part.
 */
#ifndef AB_FILE_H
#define AB_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "ab_err.h"

/**
 * @brief Reads the regular file \p path into \p buf, which has room for
 *        \p size bytes: up to size - 1 bytes and a NUL after them.
 * @param modep if not NULL, the file's mode (st_mode).
 * @returns AB_OK with \p *lenp; AB_ERR_NOT_FOUND when it does not exist,
 *          AB_ERR_INVALID when it is not a regular file, AB_ERR_TOO_LARGE
 *          when it holds size bytes or more, AB_ERR_IO else; errstr
 *          names \p path. On error \p buf may hold part of the file.
 */
ab_err_t ab_file_read(const char *path, char *buf, size_t size, size_t *lenp,
                      mode_t *modep, char *errstr, size_t errstr_size);

#endif
