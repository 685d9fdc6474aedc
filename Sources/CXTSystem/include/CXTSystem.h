// Process-level system tuning for the `xt` executable that Swift's Glibc module does not expose.
#ifndef CXTSYSTEM_H
#define CXTSYSTEM_H

/// Keeps freed blocks of up to `mmap_threshold` bytes in the heap (instead of mapping and
/// unmapping each one) and trims the heap only when `trim_threshold` bytes are free at its top.
/// Returns 1 if glibc accepted both settings.
int xt_tune_allocator(int mmap_threshold, int trim_threshold);

#endif
