#define _GNU_SOURCE
#include "CXTSystem.h"

#include <poll.h>
#include <time.h>

#include <malloc.h>
#include <stdio.h>

void xt_line_buffer_stdout(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

int xt_tune_allocator(int mmap_threshold, int trim_threshold) {
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
}

int xt_poll_ns(struct pollfd *fds, unsigned int count, long long timeout_ns) {
    if (timeout_ns < 0) return ppoll(fds, count, NULL, NULL);
    struct timespec wait = { .tv_sec = timeout_ns / 1000000000LL, .tv_nsec = timeout_ns % 1000000000LL };
    return ppoll(fds, count, &wait, NULL);
}
