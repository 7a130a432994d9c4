/* libFuzzer entry for the scale decoders (docs/protocols/scale.md).
 *
 *   make native/fuzz/fuzz_scale && native/fuzz/fuzz_scale native/fuzz/corpus/scale
 *
 * Input: the first SETTINGS_BYTES bytes are the configuration (below); the rest is the stream, decoded twice, fed
 * whole and fed in chunks whose sizes come from a generator seeded with the input, and the two outputs must be
 * identical. The output must be a well-formed sequence of {"type": str, "data": map}, and every protocol.error's
 * raw must be empty (a Magellan line may be a label).
 *
 * Settings byte 0: bits 0-1 protocol (nci, toledo, cas, magellan), bit 2 from_device, bit 3 unit kg. Bits 4-7
 * set make an out-of-range protocol, which tw_scale_new() must refuse.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scale.h"
#include "tw_errors.h"
#include "tw_msgpack.h"
#include "fuzz_common.h"

#define SETTINGS_BYTES 1

static void *make(const void *cfg) { return tw_scale_new(cfg); }
static int feed(void *d, const uint8_t *data, size_t len, tw_out *out) { return tw_scale_feed(d, data, len, out); }
static int close_(void *d, tw_out *out) { return tw_scale_close(d, out); }
static void destroy(void *d) { tw_scale_free(d); }
static const fuzz_target target = {make, feed, close_, destroy};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tw_scale_config cfg;
    if (size < SETTINGS_BYTES)
        return 0;
    memset(&cfg, 0, sizeof(cfg));
    cfg.protocol = data[0] & 3;
    cfg.from_device = (data[0] >> 2) & 1;
    cfg.unit = (data[0] >> 3) & 1;
    if (data[0] >> 4 == 0xF) { /* a protocol out of range: refused */
        cfg.protocol = 4 + (data[0] & 3);
        if (tw_scale_new(&cfg) != NULL)
            abort();
        return 0;
    }
    /* maps: scanner.data's gs1 map is the largest (fewer than 1024 entries) */
    fuzz_whole_vs_chunked(&target, &cfg, data + SETTINGS_BYTES, size - SETTINGS_BYTES, seed_of(data, size), 1024, 0);
    return 0;
}
