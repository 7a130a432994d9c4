/* Length-prefixed framing (docs/protocols/iso8583.md sections 1 and 2): the framer the ISO 8583 decoder sits on,
 * and the `lenframe` decoder (the framer alone, emitting ecr.frame).
 *
 * The framer is a step function: tw_lenframe_take() consumes bytes until it has something to report (a complete
 * frame, or a framing error) or the input ends. A frame whose bytes all sit in the caller's input is reported in
 * place (no copy); otherwise its bytes are collected in a buffer that grows geometrically up to the bound and is
 * kept for the decoder's life. Only the prefix (<= 4 bytes) and the frame being collected are held.
 */
#ifndef TW_LENFRAME_H
#define TW_LENFRAME_H

#include <stddef.h>
#include <stdint.h>

#include "tw_event.h"
#include "tw_msgpack.h"

/* framing codes (protocols/iso8583/tables.py FRAMINGS) */
#define TW_LF_LEN2 0
#define TW_LF_LEN4 1
#define TW_LF_ASCII4 2
#define TW_LF_HEX4 3
#define TW_LF_BCD2 4
#define TW_LF_VMLH 5
#define TW_LF_NONE 6 /* iso8583 only: the whole stream is one message */

#define TW_LF_MAX_PREFIX 4

/* what tw_lenframe_take() reports */
#define TW_LF_NOTHING 0
#define TW_LF_FRAME 1
#define TW_LF_ERROR 2

typedef struct tw_lenframe {
    int framing;
    unsigned plen;      /* prefix bytes */
    unsigned header;    /* link header bytes, counted in the length */
    uint32_t bound;     /* largest length after the prefix */

    uint8_t pre[TW_LF_MAX_PREFIX]; /* prefix bytes read so far */
    unsigned npre;
    uint64_t pre_off;   /* stream offset of pre[0] */
    int run;            /* inside a run of prefix errors: only the first is reported */

    int in_frame;
    uint32_t need;      /* frame bytes still to come */
    uint32_t flen;      /* the frame's length */
    uint64_t frame_off;
    uint8_t prefix[TW_LF_MAX_PREFIX];

    uint8_t *buf;       /* the frame being collected across feeds */
    size_t len, cap;
    int overflow;       /* TW_LF_NONE: the stream outgrew the bound */
    int nomem;
} tw_lenframe;

/* The result of one step. For a frame: `frame`/`frame_len` (header + message), `offset` = its prefix's first byte,
 * `prefix`/`prefix_len`. For an error: `code`, `offset`, `raw`/`raw_len` (always empty:
 * a length framing has no resynchronisation point, so its errors quote nothing). Pointers are valid until the next call. */
typedef struct tw_lf_result {
    int kind;
    int code;
    uint64_t offset;
    const uint8_t *frame;
    size_t frame_len;
    const uint8_t *raw;
    size_t raw_len;
} tw_lf_result;

/* 0, or TW_ERR_BAD_CONFIG for an unknown framing, a header over TW_MAX_LINK_HEADER or a bound over 2^31 */
int tw_lenframe_init(tw_lenframe *f, int framing, unsigned header, uint32_t bound);
void tw_lenframe_release(tw_lenframe *f);
/* Consumes input from p[0..n) (the first byte at stream offset `off`) until it has a result or the input is used
 * up; returns the bytes consumed. r->kind says what happened. Out of memory sets f->nomem (the frame is lost). */
size_t tw_lenframe_take(tw_lenframe *f, const uint8_t *p, size_t n, uint64_t off, tw_lf_result *r);
/* End of stream: a truncated frame (error), the TW_LF_NONE message (frame), or nothing. */
void tw_lenframe_finish(tw_lenframe *f, tw_lf_result *r);
/* A whole feed() or close() of a decoder built on the framer, with the decoder's stream bookkeeping (tw_event.h):
 * each complete frame goes to on_frame(ctx, r), each framing error becomes a protocol.error, and a framer out of
 * memory fails the stream. Returns the call's status. */
typedef void (*tw_lf_frame_fn)(void *ctx, const tw_lf_result *r);
int tw_lenframe_run_feed(tw_lenframe *f, tw_stream *io, const uint8_t *data, size_t len, tw_out *out,
                         tw_lf_frame_fn on_frame, void *ctx);
int tw_lenframe_run_close(tw_lenframe *f, tw_stream *io, tw_out *out, tw_lf_frame_fn on_frame, void *ctx);
/* The framing's name ("len2", ...) and its length. */
const char *tw_lenframe_name(int framing, size_t *len);

/* ---- the lenframe decoder: ecr.frame {dialect, payload (scrubbed), header?} per frame */
#ifndef TW_LENFRAME_TYPES_DEFINED
#define TW_LENFRAME_TYPES_DEFINED
typedef struct tw_lenframe_dec tw_lenframe_dec;
#endif

/* NULL when out of memory or for a bad configuration (framing none is refused). */
tw_lenframe_dec *tw_lenframe_new(int framing, unsigned header);
void tw_lenframe_free(tw_lenframe_dec *d);
int tw_lenframe_feed(tw_lenframe_dec *d, const uint8_t *data, size_t len, tw_out *out);
int tw_lenframe_close(tw_lenframe_dec *d, tw_out *out);

#endif
