// An emulated V4L2 capture device, loaded by libv4l2 as a plugin (libv4l-plugin.h), so the
// agent's real V4L2 code path (v4l2_open, VIDIOC_*, mmap streaming) runs where no camera is.
//
// The "device" is a regular file that starts with this header, followed by a frame table and
// the frames themselves (MJPEG pictures, YUYV pictures or H.264 access units). libv4l2 offers
// every opened file to its plugins; this one claims only files that start with the magic.
// It plays the frames in a loop at the file's frame rate. Deleting the file unplugs the camera
// (the next DQBUF fails with ENODEV); creating it again plugs it back in.
#ifndef CV4L2EMULATOR_H
#define CV4L2EMULATOR_H

#include <stdint.h>

#define XT_EMULATED_CAMERA_MAGIC "XTV4L2E1"

/// The file's header (little-endian, 64 bytes).
struct xt_emulated_camera_header {
    char magic[8];
    uint32_t fourcc;
    uint32_t width;
    uint32_t height;
    uint32_t fps;
    uint32_t frame_count;
    uint32_t reserved[9];
};

/// One entry of the frame table that follows the header.
struct xt_emulated_camera_frame {
    uint64_t offset;
    uint32_t length;
    uint32_t keyframe;
};

#endif
