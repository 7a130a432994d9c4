/* ZVT APDU layer: docs/protocols/zvt.md is the contract.
 *
 * The link layer (zvt_link.c) hands one complete APDU (header included) to tw_zvt_apdu_decode(), which appends its
 * events to the caller's tw_out: the faults found in it, zvt.apdu with the decoded BMPs / TLV container / fixed
 * fields, then the semantic payment.* events. Decoding is one pass over the APDU; the only state is a per-tag table
 * (which BMPs this APDU carried and where their values are) that lives in the link decoder and is never cleared:
 * an APDU counter tells current entries from stale ones.
 */
#ifndef TW_ZVT_APDU_H
#define TW_ZVT_APDU_H

#include <stddef.h>
#include <stdint.h>

#include "tw_msgpack.h"

typedef struct tw_zvt_apdu_state {
    uint32_t gen;          /* APDU counter: an entry below is current when its stamp equals gen */
    uint32_t seen[256];    /* BMP tag met in this APDU */
    uint32_t kept[256];    /* BMP tag decoded and kept: its value is at val/len */
    const uint8_t *val[256];
    uint32_t len[256];
} tw_zvt_apdu_state;

/* apdu[0..count): the APDU's bytes, its header of hl (3 or 5) bytes first; offset: the stream offset reported in
 * errors (the APDU's first byte; serial: its DLE STX). quote_header: faults of the APDU as a whole may quote its
 * header in raw (serial: the frame's CRC vouches that it is one); 0 on tcp, where after a tap joined mid-APDU the
 * "header" is message bytes, so those faults carry an empty raw (payment.md section 2). */
void tw_zvt_apdu_decode(tw_zvt_apdu_state *st, const uint8_t *apdu, size_t count, unsigned hl, uint64_t offset,
                        int strict, int quote_header, tw_out *out);

#endif
