#include "CXTSystem.h"

#include <malloc.h>
#include <stdio.h>

void xt_line_buffer_stdout(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

int xt_tune_allocator(int mmap_threshold, int trim_threshold) {
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
}
