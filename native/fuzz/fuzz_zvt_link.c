/* libFuzzer entry for the ZVT link-layer decoder.
 *
 *   clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -Inative native/fuzz/fuzz_zvt_link.c \
 *         native/zvt_link.c native/tw_*.c -o native/fuzz/fuzz_zvt_link
 *   native/fuzz/fuzz_zvt_link native/fuzz/corpus/zvt_link
 *
 * Input: bit 0 of byte 0 picks the framing (0 serial, 1 tcp), bit 1 the APDU layer's strict mode; the rest is
 * the stream. It is decoded twice, fed whole and fed in chunks whose sizes come from a generator seeded with the
 * input, and the two outputs must be identical (chunk invariance). The output must be a well-formed sequence of
 * {"type": str, "data": map}, and no protocol.error's raw may be longer than an APDU header (5 bytes): data bytes
 * never reach an error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_errors.h"
#include "tw_msgpack.h"
#include "zvt_link.h"
#include "fuzz_common.h"

static void decode(int framing, int strict, const uint8_t *data, size_t size, int chunked, uint64_t seed,
                   tw_out *out)
{
    tw_zvt_link *d = tw_zvt_link_new(framing, strict);
    uint64_t rng = seed;
    size_t pos = 0;
    int rc;

    if (!d)
        abort();
    tw_out_reset(out);
    while (pos < size) {
        size_t n = size - pos;
        if (chunked) {
            uint64_t r = next_random(&rng);
            size_t want = (r >> 32) % 8 == 0 ? (size_t)((r >> 40) % 4096) + 1 : (size_t)((r >> 40) % 9) + 1;
            if (n > want)
                n = want;
        }
        rc = tw_zvt_link_feed(d, data + pos, n, out);
        if (rc != TW_OK)
            abort();
        pos += n;
    }
    /* an empty feed is a no-op */
    if (tw_zvt_link_feed(d, data, 0, out) != TW_OK)
        abort();
    rc = tw_zvt_link_close(d, out);
    if (rc != TW_OK || tw_zvt_link_feed(d, data, size, out) != TW_ERR_CLOSED ||
        tw_zvt_link_close(d, out) != TW_ERR_CLOSED)
        abort();
    tw_zvt_link_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tw_out whole, chunked;
    int framing, strict;
    uint64_t seed;

    if (size < 1)
        return 0;
    framing = data[0] & 1 ? TW_ZVT_TCP : TW_ZVT_SERIAL;
    strict = (data[0] >> 1) & 1;
    seed = seed_of(data, size);
    decode(framing, strict, data + 1, size - 1, 0, seed, &whole);
    decode(framing, strict, data + 1, size - 1, 1, seed, &chunked);
    if (whole.len != chunked.len || (whole.len && memcmp(whole.data, chunked.data, whole.len) != 0)) {
        fprintf(stderr, "chunked output differs from whole output\n");
        abort();
    }
    check_events(&whole, 16, 5); /* raw: at most an APDU header, never data */
    if (whole.cap > (1u << 22))
        tw_out_trim(&whole, 1u << 16);
    if (chunked.cap > (1u << 22))
        tw_out_trim(&chunked, 1u << 16);
    return 0;
}
