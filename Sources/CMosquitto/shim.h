// libmosquitto (Eclipse Mosquitto's MQTT 3.1.1/5 client library, Debian libmosquitto-dev) for
// Swift. The API imports as it is: callbacks are plain C function pointers with a user pointer.
#ifndef CMOSQUITTO_SHIM_H
#define CMOSQUITTO_SHIM_H

#include <mosquitto.h>

#endif
