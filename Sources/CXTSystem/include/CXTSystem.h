// Process-level settings for the `xt` executable that Swift cannot reach safely or at all.
#ifndef CXTSYSTEM_H
#define CXTSYSTEM_H

#include <poll.h>

/// Keeps freed blocks of up to `mmap_threshold` bytes in the heap (instead of mapping and
/// unmapping each one) and trims the heap only when `trim_threshold` bytes are free at its top.
/// Returns 1 if glibc accepted both settings.
int xt_tune_allocator(int mmap_threshold, int trim_threshold);

/// Makes standard output line-buffered, also when it is a file or a pipe (a running host's
/// log lines appear as they happen).
void xt_line_buffer_stdout(void);

/// poll(2) with a timeout in nanoseconds (negative: wait without limit), through ppoll, which
/// Swift cannot see without _GNU_SOURCE. Returns what ppoll returns.
int xt_poll_ns(struct pollfd *fds, unsigned int count, long long timeout_ns);

#endif
