/* libFuzzer entry for the lenframe decoder (the length framer alone).
 *
 *   make native/fuzz/fuzz_lenframe && native/fuzz/fuzz_lenframe native/fuzz/corpus/lenframe
 *
 * Input: byte 0 picks the framing (bits 0-2 modulo 6: len2, len4, ascii4, hex4, bcd2, vmlh) and bit 3 a 2-byte
 * header; the rest is the stream, decoded whole and in seeded chunks: the outputs must be identical and
 * well-formed, and no protocol.error `raw` may be longer than a prefix (4 bytes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lenframe.h"
#include "tw_errors.h"
#include "tw_msgpack.h"
#include "fuzz_common.h"

static void decode(int framing, unsigned header, const uint8_t *data, size_t size, int chunked, uint64_t seed,
                   tw_out *out)
{
    tw_lenframe_dec *d = tw_lenframe_new(framing, header);
    uint64_t rng = seed;
    size_t pos = 0;

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
        if (tw_lenframe_feed(d, data + pos, n, out) != TW_OK)
            abort();
        pos += n;
    }
    if (tw_lenframe_close(d, out) != TW_OK || tw_lenframe_feed(d, data, size, out) != TW_ERR_CLOSED)
        abort();
    tw_lenframe_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tw_out whole, chunked;
    int framing;
    unsigned header;
    uint64_t seed;

    if (size < 1)
        return 0;
    framing = (data[0] & 7) % 6;
    header = data[0] & 8 ? 2 : 0;
    seed = seed_of(data, size);
    decode(framing, header, data + 1, size - 1, 0, seed, &whole);
    decode(framing, header, data + 1, size - 1, 1, seed, &chunked);
    if (whole.len != chunked.len || (whole.len && memcmp(whole.data, chunked.data, whole.len) != 0)) {
        fprintf(stderr, "chunked output differs from whole output\n");
        abort();
    }
    check_events(&whole, 4, 4);
    if (whole.cap > (1u << 22))
        tw_out_trim(&whole, 1u << 16);
    if (chunked.cap > (1u << 22))
        tw_out_trim(&chunked, 1u << 16);
    return 0;
}
