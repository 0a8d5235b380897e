/* Whole-file reads for configuration, profiles and trajectories (never on the hot path). */
#ifndef STROBE_READ_FILE_H
#define STROBE_READ_FILE_H
#include <stddef.h>

/* The file's bytes, NUL-terminated, malloc'd; NULL with errno set if it cannot be read:
 * EISDIR for a directory, ENOMEM when it does not fit in memory, else open's or read's
 * errno. Regular files are sized by fstat; pipes and other streams are read to their end.
 * len (may be NULL) receives the byte count. */
char *read_file(const char *path, size_t *len);
/* What path is, in words ("a FIFO", "a character device"), when it exists and is neither a
 * regular file nor a directory, else NULL: read_file reads such a stream to its end
 * (/dev/zero until memory runs out) or waits on it (a FIFO without a writer), so a caller
 * that needs a file refuses these first. */
const char *read_file_special(const char *path);

#endif
