/* libFuzzer entry for the lenframe decoder (the length framer alone).
 *
 *   make native/fuzz/fuzz_lenframe && native/fuzz/fuzz_lenframe native/fuzz/corpus/lenframe
 *
 * Input: byte 0 picks the framing (bits 0-2 modulo 6: len2, len4, ascii4, hex4, bcd2, vmlh) and bit 3 a 2-byte
 * header; the rest is the stream, decoded whole and in seeded chunks: the outputs must be identical and
 * well-formed, and every protocol.error `raw` must be empty (a length framing has no resynchronisation point, so
 * its errors quote nothing: payment.md section 2).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lenframe.h"
#include "tw_errors.h"
#include "tw_msgpack.h"
#include "fuzz_common.h"

struct lenframe_cfg {
    int framing;
    unsigned header;
};

static void *make(const void *cfg)
{
    const struct lenframe_cfg *c = cfg;
    return tw_lenframe_new(c->framing, c->header);
}
static int feed(void *d, const uint8_t *data, size_t len, tw_out *out) { return tw_lenframe_feed(d, data, len, out); }
static int close_(void *d, tw_out *out) { return tw_lenframe_close(d, out); }
static void destroy(void *d) { tw_lenframe_free(d); }
static const fuzz_target target = {make, feed, close_, destroy};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lenframe_cfg cfg;

    if (size < 1)
        return 0;
    cfg.framing = (data[0] & 7) % 6;
    cfg.header = data[0] & 8 ? 2 : 0;
    fuzz_whole_vs_chunked(&target, &cfg, data + 1, size - 1, seed_of(data, size), 4, 0);
    return 0;
}
