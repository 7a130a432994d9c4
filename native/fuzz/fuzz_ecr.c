/* libFuzzer entry for the generic ECR link decoder.
 *
 *   clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -Inative native/fuzz/fuzz_ecr.c \
 *         native/ecr.c native/tw_*.c -o native/fuzz/fuzz_ecr
 *   native/fuzz/fuzz_ecr native/fuzz/corpus/ecr
 *
 * Input: the first SETTINGS_BYTES bytes are the settings (below); the rest is the stream. Settings that break a
 * rule must be refused by tw_ecr_check_config (and tw_ecr_new) - that is fuzzed too; the others decode the stream
 * twice, fed whole and fed in chunks whose sizes come from a generator seeded with the input, and the two
 * outputs must be identical. The output must be a well-formed sequence of {"type": str, "data": map}, and no
 * protocol.error's raw may be longer than one byte (the STX): payload bytes never reach an error.
 *
 * Settings bytes: 0 stx, 1 etx, 2 checksum (low 3 bits, values past 4 are kept: they must be refused) | bit 3
 * big-endian CRC | bit 4 include STX | bit 5 include ETX | bit 6 strict, 3-4 seed (little-endian; the high byte
 * only for CRCs), 5 fs, 6 us, 7 ack, 8 nak, 9 enq, 10 eot (0xFF = none for each), 11-12 max_frame (little-endian,
 * 0 means 65536 + 1: refused), 13 layout (0 none, 1 a Transbank-like table by code, 2 a Concert-like table by
 * length).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecr.h"
#include "tw_bounds.h"
#include "tw_errors.h"
#include "tw_msgpack.h"
#include "fuzz_common.h"

#define SETTINGS_BYTES 14

#define ITEM_CONST(k, v) {k, sizeof(k) - 1, TW_ECR_ITEM_CONST, 0, -1, 0, 0, v, sizeof(v) - 1}
#define ITEM_FIELD(k, t, f, sub) {k, sizeof(k) - 1, t, f, sub, 0, 0, NULL, 0}
#define ITEM_SLICE(k, t, a, b) {k, sizeof(k) - 1, t, 0, -1, a, b, NULL, 0}
#define ITEM_APPROVED_F(k, f, v) {k, sizeof(k) - 1, TW_ECR_ITEM_APPROVED, f, -1, 0, 0, v, sizeof(v) - 1}
#define ITEM_APPROVED_S(k, a, b, v) {k, sizeof(k) - 1, TW_ECR_ITEM_APPROVED, 0, -1, a, b, v, sizeof(v) - 1}

static const tw_ecr_item code_request[] = {
    ITEM_CONST("protocol", "ecr"), ITEM_CONST("kind", "authorization"),
    ITEM_FIELD("amount_minor", TW_ECR_ITEM_INT, 1, -1), ITEM_FIELD("ticket", TW_ECR_ITEM_STR, 2, -1),
    ITEM_FIELD("currency", TW_ECR_ITEM_CURRENCY, 3, 1), ITEM_FIELD("sub", TW_ECR_ITEM_STR, 2, 63),
};
static const tw_ecr_item code_result[] = {
    ITEM_APPROVED_F("approved", 1, "0\0" "00\0"), ITEM_FIELD("result_code", TW_ECR_ITEM_STR, 1, -1),
    ITEM_FIELD("amount_minor", TW_ECR_ITEM_INT, 6, 0), ITEM_FIELD("auth_code", TW_ECR_ITEM_STR, 5, 2),
    ITEM_FIELD("pan", TW_ECR_ITEM_PAN, 4, 0), ITEM_FIELD("expiry", TW_ECR_ITEM_WITHHELD, 4, 1),
    ITEM_FIELD("cardholder", TW_ECR_ITEM_WITHHELD, 4, 2), ITEM_FIELD("date", TW_ECR_ITEM_STR, 63, -1),
};
static const tw_ecr_message code_messages[] = {
    {"0200", 4, 0, 0, 2, "01", 2, "payment.request", 15, code_request, sizeof(code_request) / sizeof(code_request[0])},
    {"0210", 4, 1, 0, -1, NULL, 0, "payment.result", 14, code_result, sizeof(code_result) / sizeof(code_result[0])},
    {"", 0, 0, 0, 3, "", 0, "payment.status", 14, code_request, 2},
};
static const tw_ecr_item length_request[] = {
    ITEM_CONST("protocol", "ecr"), ITEM_SLICE("amount_minor", TW_ECR_ITEM_INT, 2, 10),
    ITEM_SLICE("currency", TW_ECR_ITEM_CURRENCY, 13, 16), ITEM_SLICE("pos_number", TW_ECR_ITEM_STR, 0, 2),
    ITEM_SLICE("pan", TW_ECR_ITEM_PAN, 16, 34), ITEM_SLICE("name", TW_ECR_ITEM_WITHHELD, 20, 30),
};
static const tw_ecr_item length_result[] = {
    ITEM_APPROVED_S("approved", 2, 3, "0\0"), ITEM_SLICE("result_code", TW_ECR_ITEM_STR, 2, 3),
    ITEM_SLICE("amount_minor", TW_ECR_ITEM_INT, 3, 11), ITEM_SLICE("private", TW_ECR_ITEM_STR, 15, 25),
};
static const tw_ecr_message length_messages[] = {
    {NULL, 0, 0, 34, 12, "0", 1, "payment.request", 15, length_request,
     sizeof(length_request) / sizeof(length_request[0])},
    {NULL, 0, 0, 25, -1, NULL, 0, "payment.result", 14, length_result, sizeof(length_result) / sizeof(length_result[0])},
    {NULL, 0, 0, 5, 0, "01234", 5, "payment.result", 14, length_result, 2},
};

static int opt(uint8_t b) { return b == 0xFF ? TW_ECR_NONE : b; }

static void settings_of(const uint8_t *s, tw_ecr_config *c)
{
    memset(c, 0, sizeof(*c));
    c->stx = s[0];
    c->etx = s[1];
    c->checksum = s[2] & 7;
    c->crc_big_endian = (s[2] >> 3) & 1;
    c->include_stx = (s[2] >> 4) & 1;
    c->include_etx = (s[2] >> 5) & 1;
    c->strict = (s[2] >> 6) & 1;
    c->seed = (uint32_t)s[3] | (c->checksum >= TW_ECR_CK_CRC16_KERMIT ? (uint32_t)s[4] << 8 : 0);
    if (c->checksum == TW_ECR_CK_NONE && !(s[4] & 1))
        c->seed = 0;
    c->fs = opt(s[5]);
    c->us = opt(s[6]);
    c->ack = opt(s[7]);
    c->nak = opt(s[8]);
    c->enq = opt(s[9]);
    c->eot = opt(s[10]);
    c->max_frame = (uint32_t)s[11] | (uint32_t)s[12] << 8;
    if (c->max_frame == 0)
        c->max_frame = 65537;
    c->dialect = "fuzz";
    c->dialect_len = 4;
    switch (s[13] % 3) {
    case 1:
        c->match = TW_ECR_MATCH_CODE;
        c->messages = code_messages;
        c->n_messages = 3;
        break;
    case 2:
        c->match = TW_ECR_MATCH_LENGTH;
        c->messages = length_messages;
        c->n_messages = 3;
        break;
    default:
        c->match = TW_ECR_MATCH_NONE;
        break;
    }
}

static void *make(const void *cfg) { return tw_ecr_new(cfg); }
static int feed(void *d, const uint8_t *data, size_t len, tw_out *out) { return tw_ecr_feed(d, data, len, out); }
static int close_(void *d, tw_out *out) { return tw_ecr_close(d, out); }
static void destroy(void *d) { tw_ecr_free(d); }
static const fuzz_target target = {make, feed, close_, destroy};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tw_ecr_config cfg;

    if (size < SETTINGS_BYTES)
        return 0;
    settings_of(data, &cfg);
    if (tw_ecr_check_config(&cfg) != TW_OK) {
        if (tw_ecr_new(&cfg) != NULL) /* a refused configuration never makes a decoder */
            abort();
        return 0;
    }
    /* raw: at most the STX byte, never payload */
    fuzz_whole_vs_chunked(&target, &cfg, data + SETTINGS_BYTES, size - SETTINGS_BYTES, seed_of(data, size),
                          TW_ECR_MAX_ITEMS, 1);
    return 0;
}
