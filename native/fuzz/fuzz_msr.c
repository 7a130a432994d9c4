/* libFuzzer entry for the magnetic stripe reader decoder (docs/protocols/msr.md).
 *
 *   mkdir -p native/fuzz/out/msr && make native/fuzz/fuzz_msr &&
 *   native/fuzz/fuzz_msr -max_total_time=60 native/fuzz/out/msr native/fuzz/corpus/msr
 *
 * Input: the first SETTINGS_BYTES bytes are the options (below); the rest is the stream, decoded twice, fed whole
 * and fed in chunks whose sizes come from a generator seeded with the input, and the two outputs must be
 * identical. The output must be a well-formed sequence of {"type": str, "data": map}, and every protocol.error's
 * raw must be empty (any track byte may be card data). Ticks are not fuzzed here (without ticks a swipe ends at
 * its last track, the next swipe or close()); the Python differential test covers them.
 *
 * Settings bytes: 0 separator (mod 4: cr, crlf, lf, none), 1 bit 0 lrc, 2 tracks (mod 7 + 1: the set of tracks
 * 1..3 as bits 0..2).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msr.h"
#include "tw_bounds.h"
#include "tw_errors.h"
#include "tw_msgpack.h"
#include "fuzz_common.h"

#define SETTINGS_BYTES 3

static void *make(const void *cfg) { return tw_msr_new(cfg); }
static int feed(void *d, const uint8_t *data, size_t len, tw_out *out) { return tw_msr_feed(d, data, len, out); }
static int close_(void *d, tw_out *out) { return tw_msr_close(d, out); }
static void destroy(void *d) { tw_msr_free(d); }
static const fuzz_target target = {make, feed, close_, destroy};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tw_msr_config cfg;
    if (size < SETTINGS_BYTES)
        return 0;
    memset(&cfg, 0, sizeof(cfg));
    cfg.separator = data[0] % 4;
    cfg.lrc = data[1] & 1;
    cfg.tracks = (unsigned)(data[2] % 7 + 1) << 1;
    cfg.gap_ms = 50;
    fuzz_whole_vs_chunked(&target, &cfg, data + SETTINGS_BYTES, size - SETTINGS_BYTES, seed_of(data, size), 16, 0);
    return 0;
}
