/* Shared magnetic stripe track rules (tw_msr.h). */
#include "tw_msr.h"

#include "tw_card.h"
#include "tw_event.h"

size_t tw_msr_track_pan(const uint8_t *s, size_t n, int number, size_t *at)
{
    size_t start, k;
    uint8_t stop;
    if (number == 1) {
        if (n < 2 || s[0] != '%' || s[1] != 'B')
            return 0;
        start = 2;
        stop = '^';
    } else {
        if (n < 1 || s[0] != ';')
            return 0;
        start = 1;
        stop = '=';
    }
    k = start;
    while (k < n && k - start < TW_MSR_PAN_MAX && s[k] >= '0' && s[k] <= '9')
        k++;
    if (k == start || k >= n || s[k] != stop)
        return 0;
    *at = start;
    return k - start;
}

void tw_msr_write_swipe(tw_out *o, const uint8_t *pan, size_t pan_len, const uint8_t *tracks, unsigned n_tracks)
{
    unsigned i;
    uint8_t *p = tw_out_room(o, 64 + n_tracks);
    if (!p)
        return;
    p = TW_HEAD(p, "msr.swipe", pan_len ? 2 : 1);
    if (pan_len) {
        p = TW_KEY(p, "pan");
        tw_out_commit(o, p);
        tw_mp_pan(o, pan, pan_len); /* the PAN only: name, expiry and the rest never leave */
        p = tw_out_room(o, 16 + n_tracks);
        if (!p)
            return;
    }
    p = TW_KEY(p, "tracks");
    p = tw_mpw_array(p, n_tracks);
    for (i = 0; i < n_tracks; i++)
        p = tw_mpw_uint(p, tracks[i]);
    tw_out_commit(o, p);
}
