/* Small helpers for the text module: reading a whole file, and quoting
 * untrusted bytes in a message. */
#ifndef RW_TEXT_TEXT_UTIL_H
#define RW_TEXT_TEXT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "rewire.h"

/* Reads all of path into a new buffer (*len bytes, then a NUL; free()
 * it). A file longer than max_bytes is refused with RW_ERR_FORMAT before
 * it is read whole; `what` names the file's role in that message
 * ("vocabulary"). RW_ERR_IO when it cannot be opened or read. */
rw_status text_read_file(const char *path, size_t max_bytes, const char *what, uint8_t **data,
                         size_t *len);

/* Writes s[0, len) into buf (cap > 8 bytes) for a message: printable
 * ASCII and well-formed UTF-8 as they are, '"' and '\\' escaped, other
 * bytes as \xNN, and "..." after about 40 bytes. Returns buf. */
const char *text_quote(char *buf, size_t cap, const void *s, size_t len);

#endif
