/* libFuzzer entry for the ZVT link-layer decoder.
 *
 *   clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -Inative native/fuzz/fuzz_zvt_link.c \
 *         native/zvt_link.c native/tw_*.c -o native/fuzz/fuzz_zvt_link
 *   native/fuzz/fuzz_zvt_link native/fuzz/corpus/zvt_link
 *
 * Input: bit 0 of byte 0 picks the framing (0 serial, 1 tcp), bit 1 the APDU layer's strict mode; the rest is
 * the stream. It is decoded twice, fed whole and fed in chunks whose sizes come from a generator seeded with the
 * input, and the two outputs must be identical (chunk invariance). The output must be a well-formed sequence of
 * {"type": str, "data": map}, and no protocol.error's raw may be longer than serial's longest quote, a CRC-checked
 * APDU header (5 bytes), or on tcp one tag byte: tcp has no resynchronisation point, so its errors quote no header
 * (docs/protocols/payment.md section 2, zvt-link.md section 2).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_errors.h"
#include "tw_msgpack.h"
#include "zvt_link.h"
#include "fuzz_common.h"

struct zvt_cfg {
    int framing, strict;
};

static void *make(const void *cfg)
{
    const struct zvt_cfg *c = cfg;
    return tw_zvt_link_new(c->framing, c->strict);
}
static int feed(void *d, const uint8_t *data, size_t len, tw_out *out) { return tw_zvt_link_feed(d, data, len, out); }
static int close_(void *d, tw_out *out) { return tw_zvt_link_close(d, out); }
static void destroy(void *d) { tw_zvt_link_free(d); }
static const fuzz_target target = {make, feed, close_, destroy};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct zvt_cfg cfg;

    if (size < 1)
        return 0;
    cfg.framing = data[0] & 1 ? TW_ZVT_TCP : TW_ZVT_SERIAL;
    cfg.strict = (data[0] >> 1) & 1;
    /* raw: serial at most a CRC-checked APDU header; tcp at most one tag byte */
    fuzz_whole_vs_chunked(&target, &cfg, data + 1, size - 1, seed_of(data, size), 16,
                          cfg.framing == TW_ZVT_TCP ? 1 : 5);
    return 0;
}
