/* Generic STX/ETX ECR link decoder: docs/protocols/ecr.md is the contract.
 *
 * One decoder per byte stream, either direction. The dialect is data: framing bytes, checksum, separators, link
 * control bytes and the bound come in a tw_ecr_config, with the message layouts behind the semantic events
 * (built by protocols/ecr/tables.py from its presets). tw_ecr_new() checks the configuration and allocates the
 * whole state once (the frame buffer is max_frame bytes); nothing grows afterwards. feed() accepts any split of
 * the stream; a frame's payload is held until its checksum has arrived, then emitted scrubbed. Events are
 * appended to the caller's tw_out as concatenated msgpack maps {"type", "data"}.
 *
 * The configuration's strings and tables are NOT copied: they must outlive the decoder.
 */
#ifndef TW_ECR_H
#define TW_ECR_H

#include <stddef.h>
#include <stdint.h>

#include "tw_msgpack.h"

#define TW_ECR_NONE (-1) /* an optional byte that is absent */

/* checksum */
#define TW_ECR_CK_NONE 0
#define TW_ECR_CK_XOR 1
#define TW_ECR_CK_SUM 2
#define TW_ECR_CK_CRC16_KERMIT 3
#define TW_ECR_CK_CRC16_XMODEM 4

/* how a payload finds its layout */
#define TW_ECR_MATCH_NONE 0
#define TW_ECR_MATCH_CODE 1   /* field code_field's text equals the message's code */
#define TW_ECR_MATCH_LENGTH 2 /* the payload's length equals the message's length */

/* layout item types */
#define TW_ECR_ITEM_CONST 0
#define TW_ECR_ITEM_STR 1
#define TW_ECR_ITEM_INT 2
#define TW_ECR_ITEM_CURRENCY 3
#define TW_ECR_ITEM_APPROVED 4
#define TW_ECR_ITEM_PAN 5      /* masked: first six and last four kept (tw_card_mask_pan) */
#define TW_ECR_ITEM_WITHHELD 6 /* never emitted: its bytes become '*' and its key is listed under `withheld` */

/* The same definitions are repeated, under the same guard, in tw_ffi.h for cffi (which checks their layout). */
#ifndef TW_ECR_TYPES_DEFINED
#define TW_ECR_TYPES_DEFINED
typedef struct tw_ecr tw_ecr;

typedef struct tw_ecr_item {
    const char *key;
    uint32_t key_len;
    int type;           /* TW_ECR_ITEM_* */
    int32_t field;      /* MATCH_CODE: the field index */
    int32_t sub;        /* MATCH_CODE: -1 the whole field, else this sub-field of it (split on us) */
    uint32_t start;     /* MATCH_LENGTH: the payload slice [start, end) */
    uint32_t end;
    const char *value;  /* CONST: the str; APPROVED: the approved texts, each followed by a NUL */
    uint32_t value_len;
} tw_ecr_item;

typedef struct tw_ecr_message {
    const char *code;   /* MATCH_CODE: the text of field code_field */
    uint32_t code_len;
    int32_t code_field;
    uint32_t length;    /* MATCH_LENGTH */
    int32_t where_at;   /* -1, or: MATCH_CODE the field, MATCH_LENGTH the payload index, whose text must be where */
    const char *where;
    uint32_t where_len;
    const char *event;  /* the semantic event's type */
    uint32_t event_len;
    const tw_ecr_item *items;
    uint32_t n_items;
} tw_ecr_message;

typedef struct tw_ecr_config {
    int stx, etx;
    int checksum;        /* TW_ECR_CK_* */
    int crc_big_endian;  /* 2-byte checksums: high byte first on the wire */
    int include_stx, include_etx;
    uint32_t seed;
    int fs, us;          /* separators, or TW_ECR_NONE */
    int ack, nak, enq, eot; /* link control bytes, or TW_ECR_NONE */
    uint32_t max_frame;  /* payload bytes, 1 .. TW_MAX_ECR_FRAME */
    int strict;
    const char *dialect;
    uint32_t dialect_len;
    int match;           /* TW_ECR_MATCH_* */
    const tw_ecr_message *messages;
    uint32_t n_messages;
} tw_ecr_config;
#endif

/* TW_OK, or TW_ERR_BAD_CONFIG when the configuration breaks a rule of docs/protocols/ecr.md section 2. */
int tw_ecr_check_config(const tw_ecr_config *cfg);
/* NULL when out of memory or when the configuration is bad. */
tw_ecr *tw_ecr_new(const tw_ecr_config *cfg);
void tw_ecr_free(tw_ecr *d);

/* TW_OK, TW_ERR_NOMEM (sticky: the decoder is unusable afterwards) or TW_ERR_CLOSED. */
int tw_ecr_feed(tw_ecr *d, const uint8_t *data, size_t len, tw_out *out);
/* End of stream: reports a truncated frame. Further use gives TW_ERR_CLOSED. */
int tw_ecr_close(tw_ecr *d, tw_out *out);

#endif
