/* libFuzzer harness for the IDX reader (data/idx.c), plain or gzipped: the
 * input is put in an in-memory file (memfd) and read through its
 * /proc/self/fd path, so the real zlib path runs. Any bytes must load as
 * images (or labels) or fail with a message naming the file. The first
 * byte picks images or labels; the rest is the file. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "data/idx.h"

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int fd = memfd_create("fuzz-idx", MFD_CLOEXEC);
    if (fd < 0) abort();
    if (write_all(fd, data + 1, size - 1) != 0) abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    uint8_t *bytes = NULL;
    int count = 0, rows = 0, cols = 0;
    rw_status st = data[0] & 1 ? idx_read_labels(path, &bytes, &count)
                               : idx_read_images(path, &bytes, &count, &rows, &cols);
    if (st != RW_OK) {
        if (bytes || strncmp(rw_last_error(), path, strlen(path)) != 0) abort();
    } else {
        size_t n = (size_t)count * (data[0] & 1 ? 1 : (size_t)rows * (size_t)cols);
        unsigned sum = 0;
        for (size_t i = 0; i < n; i++) sum += bytes[i];
        (void)sum;
        free(bytes);
    }
    close(fd);
    return 0;
}
