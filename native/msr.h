/* Magnetic stripe card reader decoder: docs/protocols/msr.md is the contract.
 *
 * One decoder per byte stream from a card reader (keyboard-wedge capture or raw serial). Tracks (ISO/IEC 7811,
 * 7813) are framed by their sentinels, with an LRC byte after the end sentinel when lrc is on; separator bytes
 * between tracks are skipped. A swipe ends after the reader's last track, at a track that cannot follow the ones
 * read, at a quiet gap seen through tw_msr_tick(), or at close(), and leaves as one msr.swipe {pan (masked),
 * tracks}. tw_msr_new() allocates the whole state once; nothing grows with the stream. Events are appended to the
 * caller's tw_out as concatenated msgpack maps {"type", "data"}.
 */
#ifndef TW_MSR_H
#define TW_MSR_H

#include <stddef.h>
#include <stdint.h>

#include "tw_msgpack.h"

/* separator */
#define TW_MSR_SEP_CR 0
#define TW_MSR_SEP_CRLF 1
#define TW_MSR_SEP_LF 2
#define TW_MSR_SEP_NONE 3

#ifndef TW_MSR_TYPES_DEFINED
#define TW_MSR_TYPES_DEFINED
typedef struct tw_msr tw_msr;

typedef struct tw_msr_config {
    int separator; /* TW_MSR_SEP_* */
    int lrc;       /* non-zero: a byte after each end sentinel is the track's LRC, checked */
    unsigned tracks; /* bit n set (n = 1..3): the reader sends track n */
    int gap_ms;    /* 1..60000 */
} tw_msr_config;
#endif

tw_msr *tw_msr_new(const tw_msr_config *cfg);
void tw_msr_free(tw_msr *d);
int tw_msr_feed(tw_msr *d, const uint8_t *data, size_t len, tw_out *out);
int tw_msr_tick(tw_msr *d, int64_t now_ns, tw_out *out);
int tw_msr_close(tw_msr *d, tw_out *out);

#endif
