#include "read_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads fd to its end into a growing buffer; `hint` is the expected size (st_size of a
 * regular file, 0 when unknown: a pipe, a FIFO, /proc). The file may change size while it
 * is read: the loop trusts read(), not the hint. */
static char *read_all(int fd, size_t hint, size_t *len)
{
    /* +2: the NUL, and room for the read that finds the end without growing the buffer */
    size_t cap = hint ? hint + 2 : 4096;
    char *b = malloc(cap);
    if (!b) {
        errno = ENOMEM;
        return NULL;
    }
    size_t n = 0;
    for (;;) {
        if (n + 1 >= cap) {
            size_t want = cap < SIZE_MAX / 2 ? cap * 2 : SIZE_MAX;
            char *nb = want > cap ? realloc(b, want) : NULL;
            if (!nb) {
                free(b);
                errno = ENOMEM;
                return NULL;
            }
            b = nb;
            cap = want;
        }
        ssize_t got = read(fd, b + n, cap - n - 1);
        if (got < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(b);
            errno = e;
            return NULL;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    b[n] = 0;
    if (len) *len = n;
    return b;
}

const char *read_file_special(const char *path)
{
    struct stat st;
    if (stat(path, &st) || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return NULL;
    return S_ISCHR(st.st_mode)    ? "a character device"
           : S_ISBLK(st.st_mode)  ? "a block device"
           : S_ISFIFO(st.st_mode) ? "a FIFO"
           : S_ISSOCK(st.st_mode) ? "a socket"
                                  : "a special file";
}

char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        /* open() succeeds on a directory; its "size" is not its bytes */
        close(fd);
        errno = EISDIR;
        return NULL;
    }
    size_t hint = 0;
    if (S_ISREG(st.st_mode)) {
        if ((uintmax_t)st.st_size >= SIZE_MAX - 2) {
            close(fd);
            errno = ENOMEM;
            return NULL;
        }
        hint = (size_t)st.st_size;
    }
    char *b = read_all(fd, hint, len);
    int e = errno;
    close(fd);
    errno = e;
    return b;
}
