/* Scale decoders: docs/protocols/scale.md is the contract.
 *
 * One decoder per byte stream and direction, for four protocols: NCI general protocol / Weigh-Tronix SCP-01,
 * Toledo 8213/8217, CAS continuous output and Datalogic Magellan SCI (scanner and scale on one line; its labels go
 * through the scanner decoder's label function, native/scanner.h). Messages are framed by bytes into one buffer of
 * TW_MAX_SCALE_FRAME bytes allocated with the decoder; nothing grows with the stream. Events are appended to the
 * caller's tw_out as concatenated msgpack maps {"type", "data"}.
 */
#ifndef TW_SCALE_H
#define TW_SCALE_H

#include <stddef.h>
#include <stdint.h>

#include "tw_msgpack.h"

/* protocol */
#define TW_SCALE_NCI 0
#define TW_SCALE_TOLEDO 1
#define TW_SCALE_CAS 2
#define TW_SCALE_MAGELLAN 3
/* unit (Toledo weights with a point, Magellan weights) */
#define TW_SCALE_UNIT_LB 0
#define TW_SCALE_UNIT_KG 1

#ifndef TW_SCALE_TYPES_DEFINED
#define TW_SCALE_TYPES_DEFINED
typedef struct tw_scale tw_scale;

typedef struct tw_scale_config {
    int protocol;
    int from_device; /* 0: till -> scale, 1: scale -> till */
    int unit;
} tw_scale_config;

/* one command table entry: the command as sent (without its terminator) and its name */
typedef struct tw_scale_command {
    int protocol;
    const char *command;
    const char *name;
} tw_scale_command;
#endif

tw_scale *tw_scale_new(const tw_scale_config *cfg);
void tw_scale_free(tw_scale *d);
int tw_scale_feed(tw_scale *d, const uint8_t *data, size_t len, tw_out *out);
int tw_scale_close(tw_scale *d, tw_out *out);
/* the command table, for the test that compares it with protocols/scale/tables.py */
const tw_scale_command *tw_scale_command_table(unsigned *n);

#endif
