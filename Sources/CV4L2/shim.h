// libv4l2 for Swift. v4l2_open and v4l2_ioctl are variadic and the VIDIOC_* request codes and
// V4L2_PIX_FMT_* fourccs are macros, so each gets a function here.
#ifndef CV4L2_SHIM_H
#define CV4L2_SHIM_H

#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <libv4l2.h>
#include <poll.h>
#include <sys/mman.h>

/// v4l2_ioctl, retried on EINTR.
static inline int xt_v4l2_ioctl(int fd, unsigned long request, void *argument) {
    int result;
    do { result = v4l2_ioctl(fd, request, argument); } while (result == -1 && errno == EINTR);
    return result;
}
static inline int xt_open_read_write_nonblocking(const char *path) { return open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC); }
static inline int xt_v4l2_disable_conversion(void) { return V4L2_DISABLE_CONVERSION; }
static inline void *xt_map_failed(void) { return MAP_FAILED; }

static inline unsigned long xt_vidioc_querycap(void) { return VIDIOC_QUERYCAP; }
static inline unsigned long xt_vidioc_enum_fmt(void) { return VIDIOC_ENUM_FMT; }
static inline unsigned long xt_vidioc_enum_framesizes(void) { return VIDIOC_ENUM_FRAMESIZES; }
static inline unsigned long xt_vidioc_enum_frameintervals(void) { return VIDIOC_ENUM_FRAMEINTERVALS; }
static inline unsigned long xt_vidioc_g_fmt(void) { return VIDIOC_G_FMT; }
static inline unsigned long xt_vidioc_s_fmt(void) { return VIDIOC_S_FMT; }
static inline unsigned long xt_vidioc_g_parm(void) { return VIDIOC_G_PARM; }
static inline unsigned long xt_vidioc_s_parm(void) { return VIDIOC_S_PARM; }
static inline unsigned long xt_vidioc_reqbufs(void) { return VIDIOC_REQBUFS; }
static inline unsigned long xt_vidioc_querybuf(void) { return VIDIOC_QUERYBUF; }
static inline unsigned long xt_vidioc_qbuf(void) { return VIDIOC_QBUF; }
static inline unsigned long xt_vidioc_dqbuf(void) { return VIDIOC_DQBUF; }
static inline unsigned long xt_vidioc_streamon(void) { return VIDIOC_STREAMON; }
static inline unsigned long xt_vidioc_streamoff(void) { return VIDIOC_STREAMOFF; }
static inline unsigned long xt_vidioc_s_ctrl(void) { return VIDIOC_S_CTRL; }

static inline unsigned int xt_v4l2_pix_fmt_mjpeg(void) { return V4L2_PIX_FMT_MJPEG; }
static inline unsigned int xt_v4l2_pix_fmt_jpeg(void) { return V4L2_PIX_FMT_JPEG; }
static inline unsigned int xt_v4l2_pix_fmt_yuyv(void) { return V4L2_PIX_FMT_YUYV; }
static inline unsigned int xt_v4l2_pix_fmt_h264(void) { return V4L2_PIX_FMT_H264; }
static inline unsigned int xt_v4l2_cid_force_key_frame(void) { return V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME; }

#endif
