// The emulated camera: see include/CV4L2Emulator.h.
#include "CV4L2Emulator.h"

#include <errno.h>
#include <libv4l-plugin.h>
#include <linux/videodev2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_BUFFERS 8

struct emulated_camera {
    int fd;
    struct xt_emulated_camera_header header;
    struct xt_emulated_camera_frame *frames;
    uint64_t file_size;
    uint64_t buffer_size;
    uint64_t buffer_base;
    uint32_t buffer_count;
    int queued[MAX_BUFFERS];
    int streaming;
    uint32_t sequence;
    uint64_t next_due;
};

static uint64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static uint64_t page_align(uint64_t value) { return (value + 4095) & ~4095ull; }

static void *emulator_init(int fd) {
    struct xt_emulated_camera_header header;
    if (pread(fd, &header, sizeof header, 0) != (ssize_t)sizeof header) return NULL;
    if (memcmp(header.magic, XT_EMULATED_CAMERA_MAGIC, 8) != 0) return NULL;
    if (header.frame_count == 0 || header.frame_count > 100000 || header.fps == 0 || header.width == 0 || header.height == 0) return NULL;
    struct emulated_camera *camera = calloc(1, sizeof *camera);
    if (!camera) return NULL;
    camera->fd = fd;
    camera->header = header;
    camera->frames = calloc(header.frame_count, sizeof *camera->frames);
    size_t table = header.frame_count * sizeof *camera->frames;
    if (!camera->frames || pread(fd, camera->frames, table, sizeof header) != (ssize_t)table) {
        free(camera->frames);
        free(camera);
        return NULL;
    }
    uint64_t largest = 0, end = sizeof header + table;
    for (uint32_t i = 0; i < header.frame_count; i++) {
        if (camera->frames[i].length > largest) largest = camera->frames[i].length;
        if (camera->frames[i].offset + camera->frames[i].length > end) end = camera->frames[i].offset + camera->frames[i].length;
    }
    camera->file_size = end;
    camera->buffer_size = page_align(largest > 0 ? largest : 4096);
    camera->buffer_base = page_align(end);
    return camera;
}

static void emulator_close(void *private) {
    struct emulated_camera *camera = private;
    if (!camera) return;
    // Buffers lived past the frames: cut them off again so the file stays as it was written.
    if (camera->buffer_count > 0) (void)ftruncate(camera->fd, (off_t)camera->file_size);
    free(camera->frames);
    free(camera);
}

static int unplugged(struct emulated_camera *camera) {
    struct stat status;
    return fstat(camera->fd, &status) != 0 || status.st_nlink == 0;
}

static int fail(int code) {
    errno = code;
    return -1;
}

static void fill_format(struct emulated_camera *camera, struct v4l2_pix_format *pix) {
    memset(pix, 0, sizeof *pix);
    pix->width = camera->header.width;
    pix->height = camera->header.height;
    pix->pixelformat = camera->header.fourcc;
    pix->field = V4L2_FIELD_NONE;
    pix->bytesperline = camera->header.fourcc == V4L2_PIX_FMT_YUYV ? camera->header.width * 2 : 0;
    pix->sizeimage = (uint32_t)camera->buffer_size;
    pix->colorspace = V4L2_COLORSPACE_SRGB;
}

static int dequeue(struct emulated_camera *camera, struct v4l2_buffer *buffer) {
    if (!camera->streaming) return fail(EINVAL);
    if (unplugged(camera)) return fail(ENODEV);
    int index = -1;
    for (uint32_t i = 0; i < camera->buffer_count; i++) {
        if (camera->queued[i]) { index = (int)i; break; }
    }
    if (index < 0) return fail(EINVAL);
    // A camera delivers at its own rate: wait for this frame's moment.
    uint64_t now = monotonic_ns();
    if (camera->next_due > now) {
        uint64_t wait = camera->next_due - now;
        struct timespec pause = { (time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull) };
        while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {}
    }
    uint64_t interval = 1000000000ull / camera->header.fps;
    camera->next_due = (camera->next_due ? camera->next_due : monotonic_ns()) + interval;
    if (camera->next_due + 10 * interval < monotonic_ns()) camera->next_due = monotonic_ns() + interval;  // fell far behind
    if (unplugged(camera)) return fail(ENODEV);
    const struct xt_emulated_camera_frame *frame = &camera->frames[camera->sequence % camera->header.frame_count];
    char *data = malloc(frame->length);
    if (!data) return fail(ENOMEM);
    if (pread(camera->fd, data, frame->length, (off_t)frame->offset) != (ssize_t)frame->length ||
        pwrite(camera->fd, data, frame->length, (off_t)(camera->buffer_base + (uint64_t)index * camera->buffer_size)) != (ssize_t)frame->length) {
        free(data);
        return fail(EIO);
    }
    free(data);
    camera->queued[index] = 0;
    uint64_t stamp = monotonic_ns();
    memset(buffer, 0, sizeof *buffer);
    buffer->index = (uint32_t)index;
    buffer->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    buffer->memory = V4L2_MEMORY_MMAP;
    buffer->bytesused = frame->length;
    buffer->length = (uint32_t)camera->buffer_size;
    buffer->m.offset = (uint32_t)(camera->buffer_base + (uint64_t)index * camera->buffer_size);
    buffer->field = V4L2_FIELD_NONE;
    buffer->sequence = camera->sequence++;
    buffer->flags = V4L2_BUF_FLAG_MAPPED | V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC | (frame->keyframe ? V4L2_BUF_FLAG_KEYFRAME : 0);
    buffer->timestamp.tv_sec = (time_t)(stamp / 1000000000ull);
    buffer->timestamp.tv_usec = (suseconds_t)((stamp % 1000000000ull) / 1000);
    return 0;
}

static int emulator_ioctl(void *private, int fd, unsigned long int request, void *argument) {
    struct emulated_camera *camera = private;
    (void)fd;
    switch (request) {
    case VIDIOC_QUERYCAP: {
        struct v4l2_capability *capability = argument;
        memset(capability, 0, sizeof *capability);
        strcpy((char *)capability->driver, "xt-emulated");
        strcpy((char *)capability->card, "XTransport emulated camera");
        strcpy((char *)capability->bus_info, "platform:xt-emulated");
        capability->version = 0x060000;
        capability->device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
        capability->capabilities = capability->device_caps | V4L2_CAP_DEVICE_CAPS;
        return 0;
    }
    case VIDIOC_ENUM_FMT: {
        struct v4l2_fmtdesc *description = argument;
        if (description->index != 0 || description->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return fail(EINVAL);
        uint32_t index = description->index, type = description->type;
        memset(description, 0, sizeof *description);
        description->index = index;
        description->type = type;
        description->pixelformat = camera->header.fourcc;
        description->flags = camera->header.fourcc == V4L2_PIX_FMT_YUYV ? 0 : V4L2_FMT_FLAG_COMPRESSED;
        const char *name = camera->header.fourcc == V4L2_PIX_FMT_MJPEG ? "Motion-JPEG"
                         : camera->header.fourcc == V4L2_PIX_FMT_YUYV ? "YUYV 4:2:2"
                         : camera->header.fourcc == V4L2_PIX_FMT_H264 ? "H.264" : "other";
        strncpy((char *)description->description, name, sizeof description->description - 1);
        return 0;
    }
    case VIDIOC_ENUM_FRAMESIZES: {
        struct v4l2_frmsizeenum *size = argument;
        if (size->index != 0 || size->pixel_format != camera->header.fourcc) return fail(EINVAL);
        size->type = V4L2_FRMSIZE_TYPE_DISCRETE;
        size->discrete.width = camera->header.width;
        size->discrete.height = camera->header.height;
        return 0;
    }
    case VIDIOC_ENUM_FRAMEINTERVALS: {
        struct v4l2_frmivalenum *interval = argument;
        if (interval->index != 0 || interval->pixel_format != camera->header.fourcc ||
            interval->width != camera->header.width || interval->height != camera->header.height) return fail(EINVAL);
        interval->type = V4L2_FRMIVAL_TYPE_DISCRETE;
        interval->discrete.numerator = 1;
        interval->discrete.denominator = camera->header.fps;
        return 0;
    }
    case VIDIOC_G_FMT:
    case VIDIOC_S_FMT:
    case VIDIOC_TRY_FMT: {
        struct v4l2_format *format = argument;
        if (format->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return fail(EINVAL);
        if (request == VIDIOC_S_FMT && camera->buffer_count > 0) return fail(EBUSY);
        fill_format(camera, &format->fmt.pix);  // a fixed-mode camera: it answers with what it has
        return 0;
    }
    case VIDIOC_G_PARM:
    case VIDIOC_S_PARM: {
        struct v4l2_streamparm *parameters = argument;
        if (parameters->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return fail(EINVAL);
        memset(&parameters->parm, 0, sizeof parameters->parm);
        parameters->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
        parameters->parm.capture.timeperframe.numerator = 1;
        parameters->parm.capture.timeperframe.denominator = camera->header.fps;
        parameters->parm.capture.readbuffers = 2;
        return 0;
    }
    case VIDIOC_REQBUFS: {
        struct v4l2_requestbuffers *request_buffers = argument;
        if (request_buffers->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || request_buffers->memory != V4L2_MEMORY_MMAP) return fail(EINVAL);
        if (camera->streaming) return fail(EBUSY);
        uint32_t count = request_buffers->count;
        if (count > MAX_BUFFERS) count = MAX_BUFFERS;
        if (count == 1) count = 2;
        if (count > 0 && ftruncate(camera->fd, (off_t)(camera->buffer_base + count * camera->buffer_size)) != 0) return -1;
        camera->buffer_count = count;
        memset(camera->queued, 0, sizeof camera->queued);
        request_buffers->count = count;
        request_buffers->capabilities = V4L2_BUF_CAP_SUPPORTS_MMAP;
        return 0;
    }
    case VIDIOC_QUERYBUF:
    case VIDIOC_QBUF: {
        struct v4l2_buffer *buffer = argument;
        if (buffer->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || buffer->index >= camera->buffer_count) return fail(EINVAL);
        if (request == VIDIOC_QBUF) {
            if (unplugged(camera)) return fail(ENODEV);
            camera->queued[buffer->index] = 1;
        }
        uint32_t index = buffer->index;
        buffer->memory = V4L2_MEMORY_MMAP;
        buffer->length = (uint32_t)camera->buffer_size;
        buffer->m.offset = (uint32_t)(camera->buffer_base + (uint64_t)index * camera->buffer_size);
        buffer->flags = V4L2_BUF_FLAG_MAPPED | V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC | (camera->queued[index] ? V4L2_BUF_FLAG_QUEUED : 0);
        return 0;
    }
    case VIDIOC_DQBUF:
        return dequeue(camera, argument);
    case VIDIOC_STREAMON:
        if (camera->buffer_count == 0) return fail(EINVAL);
        camera->streaming = 1;
        camera->next_due = 0;
        return 0;
    case VIDIOC_STREAMOFF:
        camera->streaming = 0;
        memset(camera->queued, 0, sizeof camera->queued);
        return 0;
    case VIDIOC_S_CTRL:
    case VIDIOC_G_CTRL:
        return 0;
    default:
        return fail(ENOTTY);
    }
}

static ssize_t emulator_read(void *private, int fd, void *buffer, size_t size) {
    (void)private; (void)fd; (void)buffer; (void)size;
    return fail(EINVAL);  // streaming only, as the agent uses it
}

static ssize_t emulator_write(void *private, int fd, const void *buffer, size_t size) {
    (void)private; (void)fd; (void)buffer; (void)size;
    return fail(EINVAL);
}

__attribute__((visibility("default")))
const struct libv4l_dev_ops libv4l2_plugin = {
    .init = emulator_init,
    .close = emulator_close,
    .ioctl = emulator_ioctl,
    .read = emulator_read,
    .write = emulator_write,
};
