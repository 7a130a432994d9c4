/* ZVT APDU decoder (docs/protocols/zvt.md). See zvt_apdu.h for the model.
 *
 * Output is written with the unchecked tw_mpw_* writers after one tw_out_room() per event, sized from the APDU's
 * data length (every decoded form is at most a small constant times the bytes it comes from). Containers whose
 * element count is known only at the end (the event's data map, bmps, tlv lists) get a one-byte header that is
 * patched afterwards, widened in place in the rare case of more than 15 elements. Tables are 256-entry arrays
 * indexed by tag byte; their source of truth is protocols/zvt/bmps.py (tests compare every entry). */
#include "zvt_apdu.h"

#include <string.h>

#include "tw_bounds.h"
#include "tw_card.h"
#include "tw_errors.h"
#include "tw_event.h"
#include "tw_msgpack.h"

/* ----------------------------------------------------------------------------------- tables (bmps.py) */

enum kind { K_NONE = 0, K_INT, K_AMOUNT, K_DIGITS, K_TEXT, K_BYTES, K_PAN, K_TRACK, K_TRACK1, K_WITHHELD,
            K_TOTALS, K_TLV, K_AID };
#define LEN_LL (-2)
#define LEN_LLL (-3)
#define LEN_BER (-1)

struct bmp {
    uint8_t kind;
    int8_t len; /* fixed length, or LEN_LL / LEN_LLL / LEN_BER */
};

static const char *const status_texts[256] = {
    [0x00] = "PT is waiting for amount-confirmation",
    [0x01] = "Please watch PIN-Pad",
    [0x02] = "Please watch PIN-Pad",
    [0x03] = "Not accepted",
    [0x04] = "PT is waiting for response from FEP",
    [0x05] = "PT is sending auto-reversal",
    [0x06] = "PT is sending post-bookings",
    [0x07] = "Card not admitted",
    [0x08] = "Card unknown / undefined",
    [0x09] = "Expired card",
    [0x0A] = "Insert card",
    [0x0B] = "Please remove card!",
    [0x0C] = "Card not readable",
    [0x0D] = "Processing error",
    [0x0E] = "Please wait...",
    [0x0F] = "PT is commencing an automatic end-of-day batch",
    [0x10] = "Invalid card",
    [0x11] = "Balance display",
    [0x12] = "System malfunction",
    [0x13] = "Payment not possible",
    [0x14] = "Credit not sufficient",
    [0x15] = "Incorrect PIN",
    [0x16] = "Limit not sufficient",
    [0x17] = "Please wait...",
    [0x18] = "PIN try limit exceeded",
    [0x19] = "Card-data incorrect",
    [0x1A] = "Service-mode",
    [0x1B] = "Approved. Please fill-up",
    [0x1C] = "Approved. Please take goods",
    [0x1D] = "Declined",
    [0x26] = "PT is waiting for input of the mobile-number",
    [0x27] = "PT is waiting for repeat of mobile-number",
    [0x28] = "Currency selection, please wait...",
    [0x29] = "Language selection, please wait...",
    [0x2A] = "For loading please insert card",
    [0x2B] = "Emergency transaction, please wait",
    [0x2C] = "Application selection, please wait",
    [0x41] = "Please watch PIN-Pad\nPlease remove card!",
    [0x42] = "Please watch PIN-Pad\nPlease remove card!",
    [0x43] = "Not accepted\nPlease remove card!",
    [0x44] = "PT is waiting for response from FEP\nPlease remove card!",
    [0x45] = "PT is sending auto-reversal\nPlease remove card!",
    [0x46] = "PT is sending post-bookings\nPlease remove card!",
    [0x47] = "Card not admitted\nPlease remove card!",
    [0x48] = "Card unknown / undefined\nPlease remove card!",
    [0x49] = "Expired card\nPlease remove card!",
    [0x4B] = "Please remove card!",
    [0x4C] = "Card not readable\nPlease remove card!",
    [0x4D] = "Processing error\nPlease remove card!",
    [0x4E] = "Please wait...\nPlease remove card!",
    [0x4F] = "PT is commencing an automatic end-of-day batch\nPlease remove card!",
    [0x50] = "Invalid card\nPlease remove card!",
    [0x51] = "Balance display\nPlease remove card!",
    [0x52] = "System malfunction\nPlease remove card!",
    [0x53] = "Payment not possible\nPlease remove card!",
    [0x54] = "Credit not sufficient\nPlease remove card!",
    [0x55] = "Incorrect PIN\nPlease remove card!",
    [0x56] = "Limit not sufficient\nPlease remove card!",
    [0x57] = "Please wait...\nPlease remove card!",
    [0x58] = "PIN try limit exceeded\nPlease remove card!",
    [0x59] = "Card-data incorrect\nPlease remove card!",
    [0x5A] = "Service-mode\nPlease remove card!",
    [0x5B] = "Approved. Please fill-up\nPlease remove card!",
    [0x5C] = "Approved. Please take goods\nPlease remove card!",
    [0x5D] = "Declined\nPlease remove card!",
    [0x66] = "PT is waiting for input of the mobile-number\nPlease remove card!",
    [0x67] = "PT is waiting for repeat of mobile-number\nPlease remove card!",
    [0x68] = "PT has detected customer card insertion",
    [0x69] = "Please select DCC",
    [0xC7] = "PT is waiting for input of the mileage",
    [0xC8] = "PT is waiting for cashier",
    [0xC9] = "PT is commencing an automatic diagnosis",
    [0xCA] = "PT is commencing an automatic initialisation",
    [0xCB] = "Merchant-journal full",
    [0xCC] = "Debit advice not possible, PIN required",
    [0xD2] = "Connecting dial-up",
    [0xD3] = "Dial-up connection made",
    [0xE0] = "PT is waiting for application-selection",
    [0xE1] = "PT is waiting for language-selection",
    [0xE2] = "PT requests to use the cleaning card",
    [0xF1] = "Offline",
    [0xF2] = "Online",
    [0xF3] = "Offline transaction",
};
static const char *const card_types[256] = {
    [5] = "girocard",
    [6] = "Mastercard",
    [8] = "American Express",
    [10] = "Visa",
    [11] = "VISA electron",
    [12] = "Diners",
    [13] = "V PAY",
    [14] = "JCB",
    [46] = "Maestro",
    [87] = "Bancontact",
    [196] = "Dankort",
    [198] = "UnionPay",
    [232] = "Discover",
};
static const struct bmp bmp_table[256] = {
    [0x01] = {K_INT, 1},
    [0x02] = {K_INT, 1},
    [0x03] = {K_INT, 1},
    [0x04] = {K_AMOUNT, 6},
    [0x05] = {K_INT, 1},
    [0x06] = {K_TLV, LEN_BER},
    [0x0B] = {K_DIGITS, 3},
    [0x0C] = {K_DIGITS, 3},
    [0x0D] = {K_DIGITS, 2},
    [0x0E] = {K_WITHHELD, 2},
    [0x17] = {K_DIGITS, 2},
    [0x19] = {K_INT, 1},
    [0x22] = {K_PAN, LEN_LL},
    [0x23] = {K_TRACK, LEN_LL},
    [0x24] = {K_TRACK, LEN_LLL},
    [0x27] = {K_INT, 1},
    [0x29] = {K_DIGITS, 4},
    [0x2A] = {K_TEXT, 15},
    [0x2D] = {K_TRACK1, LEN_LL},
    [0x2E] = {K_BYTES, LEN_LL},
    [0x37] = {K_DIGITS, 3},
    [0x3A] = {K_WITHHELD, 2},
    [0x3B] = {K_TEXT, 8},
    [0x3C] = {K_TEXT, LEN_LLL},
    [0x3D] = {K_BYTES, 3},
    [0x49] = {K_DIGITS, 2},
    [0x60] = {K_TOTALS, LEN_LLL},
    [0x70] = {K_BYTES, 4},
    [0x71] = {K_BYTES, 4},
    [0x72] = {K_INT, 1},
    [0x73] = {K_INT, 1},
    [0x74] = {K_INT, 1},
    [0x75] = {K_INT, 1},
    [0x87] = {K_DIGITS, 2},
    [0x88] = {K_DIGITS, 3},
    [0x8A] = {K_INT, 1},
    [0x8B] = {K_TEXT, LEN_LL},
    [0x8C] = {K_INT, 1},
    [0x9A] = {K_BYTES, LEN_LLL},
    [0xA0] = {K_INT, 1},
    [0xA7] = {K_WITHHELD, LEN_LL}, /* EF_ID: card account data */
    [0xAA] = {K_DIGITS, 3},
    [0xAF] = {K_BYTES, LEN_LLL},
    [0xBA] = {K_AID, 5},
    [0xD0] = {K_INT, 1},
    [0xD1] = {K_WITHHELD, LEN_LL},
    [0xD2] = {K_INT, 1},
    [0xD3] = {K_INT, 1},
    [0xE0] = {K_INT, 1},
    [0xE1] = {K_TEXT, LEN_LL},
    [0xE2] = {K_TEXT, LEN_LL},
    [0xE3] = {K_TEXT, LEN_LL},
    [0xE4] = {K_TEXT, LEN_LL},
    [0xE5] = {K_TEXT, LEN_LL},
    [0xE6] = {K_TEXT, LEN_LL},
    [0xE7] = {K_TEXT, LEN_LL},
    [0xE8] = {K_TEXT, LEN_LL},
    [0xE9] = {K_INT, 1},
    [0xEA] = {K_INT, 1},
    [0xEB] = {K_BYTES, 8},
    [0xF0] = {K_INT, 1},
    [0xF1] = {K_TEXT, LEN_LL},
    [0xF2] = {K_TEXT, LEN_LL},
    [0xF3] = {K_TEXT, LEN_LL},
    [0xF4] = {K_TEXT, LEN_LL},
    [0xF5] = {K_TEXT, LEN_LL},
    [0xF6] = {K_TEXT, LEN_LL},
    [0xF7] = {K_TEXT, LEN_LL},
    [0xF8] = {K_TEXT, LEN_LL},
    [0xF9] = {K_INT, 1},
    [0xFA] = {K_INT, 1},
    [0xFB] = {K_INT, 1},
    [0xFC] = {K_INT, 1},
    [0xFD] = {K_INT, 1},
};

/* CP437 (ZVT's default character set) as UTF-8, for bytes 80..FF; 00..7F are ASCII */
struct utf8 {
    uint8_t n;
    uint8_t b[3];
};
static const struct utf8 cp437[128] = {
    {2, {0xc3, 0x87}}, {2, {0xc3, 0xbc}}, {2, {0xc3, 0xa9}}, {2, {0xc3, 0xa2}},
    {2, {0xc3, 0xa4}}, {2, {0xc3, 0xa0}}, {2, {0xc3, 0xa5}}, {2, {0xc3, 0xa7}},
    {2, {0xc3, 0xaa}}, {2, {0xc3, 0xab}}, {2, {0xc3, 0xa8}}, {2, {0xc3, 0xaf}},
    {2, {0xc3, 0xae}}, {2, {0xc3, 0xac}}, {2, {0xc3, 0x84}}, {2, {0xc3, 0x85}},
    {2, {0xc3, 0x89}}, {2, {0xc3, 0xa6}}, {2, {0xc3, 0x86}}, {2, {0xc3, 0xb4}},
    {2, {0xc3, 0xb6}}, {2, {0xc3, 0xb2}}, {2, {0xc3, 0xbb}}, {2, {0xc3, 0xb9}},
    {2, {0xc3, 0xbf}}, {2, {0xc3, 0x96}}, {2, {0xc3, 0x9c}}, {2, {0xc2, 0xa2}},
    {2, {0xc2, 0xa3}}, {2, {0xc2, 0xa5}}, {3, {0xe2, 0x82, 0xa7}}, {2, {0xc6, 0x92}},
    {2, {0xc3, 0xa1}}, {2, {0xc3, 0xad}}, {2, {0xc3, 0xb3}}, {2, {0xc3, 0xba}},
    {2, {0xc3, 0xb1}}, {2, {0xc3, 0x91}}, {2, {0xc2, 0xaa}}, {2, {0xc2, 0xba}},
    {2, {0xc2, 0xbf}}, {3, {0xe2, 0x8c, 0x90}}, {2, {0xc2, 0xac}}, {2, {0xc2, 0xbd}},
    {2, {0xc2, 0xbc}}, {2, {0xc2, 0xa1}}, {2, {0xc2, 0xab}}, {2, {0xc2, 0xbb}},
    {3, {0xe2, 0x96, 0x91}}, {3, {0xe2, 0x96, 0x92}}, {3, {0xe2, 0x96, 0x93}}, {3, {0xe2, 0x94, 0x82}},
    {3, {0xe2, 0x94, 0xa4}}, {3, {0xe2, 0x95, 0xa1}}, {3, {0xe2, 0x95, 0xa2}}, {3, {0xe2, 0x95, 0x96}},
    {3, {0xe2, 0x95, 0x95}}, {3, {0xe2, 0x95, 0xa3}}, {3, {0xe2, 0x95, 0x91}}, {3, {0xe2, 0x95, 0x97}},
    {3, {0xe2, 0x95, 0x9d}}, {3, {0xe2, 0x95, 0x9c}}, {3, {0xe2, 0x95, 0x9b}}, {3, {0xe2, 0x94, 0x90}},
    {3, {0xe2, 0x94, 0x94}}, {3, {0xe2, 0x94, 0xb4}}, {3, {0xe2, 0x94, 0xac}}, {3, {0xe2, 0x94, 0x9c}},
    {3, {0xe2, 0x94, 0x80}}, {3, {0xe2, 0x94, 0xbc}}, {3, {0xe2, 0x95, 0x9e}}, {3, {0xe2, 0x95, 0x9f}},
    {3, {0xe2, 0x95, 0x9a}}, {3, {0xe2, 0x95, 0x94}}, {3, {0xe2, 0x95, 0xa9}}, {3, {0xe2, 0x95, 0xa6}},
    {3, {0xe2, 0x95, 0xa0}}, {3, {0xe2, 0x95, 0x90}}, {3, {0xe2, 0x95, 0xac}}, {3, {0xe2, 0x95, 0xa7}},
    {3, {0xe2, 0x95, 0xa8}}, {3, {0xe2, 0x95, 0xa4}}, {3, {0xe2, 0x95, 0xa5}}, {3, {0xe2, 0x95, 0x99}},
    {3, {0xe2, 0x95, 0x98}}, {3, {0xe2, 0x95, 0x92}}, {3, {0xe2, 0x95, 0x93}}, {3, {0xe2, 0x95, 0xab}},
    {3, {0xe2, 0x95, 0xaa}}, {3, {0xe2, 0x94, 0x98}}, {3, {0xe2, 0x94, 0x8c}}, {3, {0xe2, 0x96, 0x88}},
    {3, {0xe2, 0x96, 0x84}}, {3, {0xe2, 0x96, 0x8c}}, {3, {0xe2, 0x96, 0x90}}, {3, {0xe2, 0x96, 0x80}},
    {2, {0xce, 0xb1}}, {2, {0xc3, 0x9f}}, {2, {0xce, 0x93}}, {2, {0xcf, 0x80}},
    {2, {0xce, 0xa3}}, {2, {0xcf, 0x83}}, {2, {0xc2, 0xb5}}, {2, {0xcf, 0x84}},
    {2, {0xce, 0xa6}}, {2, {0xce, 0x98}}, {2, {0xce, 0xa9}}, {2, {0xce, 0xb4}},
    {3, {0xe2, 0x88, 0x9e}}, {2, {0xcf, 0x86}}, {2, {0xce, 0xb5}}, {3, {0xe2, 0x88, 0xa9}},
    {3, {0xe2, 0x89, 0xa1}}, {2, {0xc2, 0xb1}}, {3, {0xe2, 0x89, 0xa5}}, {3, {0xe2, 0x89, 0xa4}},
    {3, {0xe2, 0x8c, 0xa0}}, {3, {0xe2, 0x8c, 0xa1}}, {2, {0xc3, 0xb7}}, {3, {0xe2, 0x89, 0x88}},
    {2, {0xc2, 0xb0}}, {3, {0xe2, 0x88, 0x99}}, {2, {0xc2, 0xb7}}, {3, {0xe2, 0x88, 0x9a}},
    {3, {0xe2, 0x81, 0xbf}}, {2, {0xc2, 0xb2}}, {3, {0xe2, 0x96, 0xa0}}, {2, {0xc2, 0xa0}}
};

#define TOTALS_LEN 53
static const char *const totals_cards[7] = {"girocard", "JCB", "Eurocard", "American Express", "Visa", "Diners",
                                            "other"};

/* command names (zvt-link.md section 4) */
struct command {
    uint8_t cls, instr;
    uint8_t name_len;
    const char *name;
};
#define CMD(c, i, n) {(c), (i), sizeof(n) - 1, (n)}
static const struct command commands[] = {
    CMD(0x06, 0x00, "registration"),      CMD(0x06, 0x01, "authorisation"),
    CMD(0x06, 0x02, "log_off"),           CMD(0x06, 0x0F, "completion"),
    CMD(0x06, 0x1E, "abort"),             CMD(0x06, 0xB0, "abort"),
    CMD(0x06, 0x10, "send_turnover_totals"), CMD(0x06, 0x20, "repeat_receipt"),
    CMD(0x06, 0x22, "preauthorisation"),  CMD(0x06, 0x23, "partial_reversal"),
    CMD(0x06, 0x24, "book_total"),        CMD(0x06, 0x30, "reversal"),
    CMD(0x06, 0x31, "refund"),            CMD(0x06, 0x50, "end_of_day"),
    CMD(0x06, 0x70, "diagnosis"),         CMD(0x06, 0x93, "initialisation"),
    CMD(0x05, 0x01, "status_enquiry"),    CMD(0x06, 0x1A, "print_configuration"),
    CMD(0x08, 0x10, "software_update"),   CMD(0x06, 0xD1, "print_line"),
    CMD(0x06, 0xD3, "print_text_block"),  CMD(0x04, 0x0F, "status_information"),
    CMD(0x04, 0xFF, "intermediate_status"), CMD(0x06, 0xC0, "read_card"),
    CMD(0x06, 0xE0, "show_text"),         CMD(0x80, 0x00, "ack"),
};
#undef CMD
static const struct command cmd_nack = {0x84, 0, 4, "nack"}; /* 84 xx: any instruction */
static const struct command cmd_unknown = {0, 0, 7, "unknown"};

static const struct command *command_of(uint8_t cls, uint8_t instr)
{
    int i;
    if (cls == 0x84)
        return &cmd_nack;
    switch (cls << 8 | instr) { /* the index of the pair in commands[] */
    case 0x0600: i = 0; break;
    case 0x0601: i = 1; break;
    case 0x0602: i = 2; break;
    case 0x060F: i = 3; break;
    case 0x061E: i = 4; break;
    case 0x06B0: i = 5; break;
    case 0x0610: i = 6; break;
    case 0x0620: i = 7; break;
    case 0x0622: i = 8; break;
    case 0x0623: i = 9; break;
    case 0x0624: i = 10; break;
    case 0x0630: i = 11; break;
    case 0x0631: i = 12; break;
    case 0x0650: i = 13; break;
    case 0x0670: i = 14; break;
    case 0x0693: i = 15; break;
    case 0x0501: i = 16; break;
    case 0x061A: i = 17; break;
    case 0x0810: i = 18; break;
    case 0x06D1: i = 19; break;
    case 0x06D3: i = 20; break;
    case 0x040F: i = 21; break;
    case 0x04FF: i = 22; break;
    case 0x06C0: i = 23; break;
    case 0x06E0: i = 24; break;
    case 0x8000: i = 25; break;
    default: return &cmd_unknown;
    }
    return &commands[i];
}

enum layout { L_NONE, L_BMP, L_PASSWORD, L_REGISTRATION, L_STATUS, L_PRINT_LINE, L_RESULT, L_NACK };

static enum layout layout_of(uint8_t cls, uint8_t instr)
{
    if (cls == 0x84)
        return L_NACK;
    switch (cls << 8 | instr) {
    case 0x0600: return L_REGISTRATION;
    case 0x0601: case 0x0622: case 0x0623: case 0x0624: case 0x0602: case 0x060F: case 0x0670: case 0x06B0:
    case 0x061A: case 0x0810: case 0x06D3: case 0x040F: case 0x06C0: case 0x06E0: case 0x8000:
        return L_BMP;
    case 0x0630: case 0x0631: case 0x0650: case 0x0610: case 0x0620: case 0x0693: case 0x0501:
        return L_PASSWORD;
    case 0x04FF: return L_STATUS;
    case 0x06D1: return L_PRINT_LINE;
    case 0x061E: return L_RESULT;
    default: return L_NONE;
    }
}

static const char *request_kind(uint8_t cls, uint8_t instr)
{
    switch (cls << 8 | instr) {
    case 0x0600: return "registration";
    case 0x0601: return "authorization";
    case 0x0622: return "preauth";
    case 0x0624: return "completion";
    case 0x0623: return "partial_reversal";
    case 0x0630: return "reversal";
    case 0x0631: return "refund";
    case 0x0650: return "eod";
    case 0x06B0: return "abort";
    case 0x0670: return "diagnosis";
    case 0x0501: return "status_enquiry";
    case 0x0620: return "repeat_receipt";
    case 0x0610: return "turnover_totals";
    case 0x0602: return "log_off";
    case 0x0693: return "initialisation";
    default: return NULL;
    }
}

/* TLV tags (bytes as a big-endian number; a tag's first byte decides its length, so the number is unique) */
#define TAG_LINE 0x07u
#define TAG_DISPLAY 0x24u
#define TAG_PRINT 0x25u
#define TAG_CARD_TECH 0x1F12u
#define TAG_AID 0x4Fu
#define TAG_PAN 0x5Au
#define TAG_TRACK2 0x57u
#define TAG_TRACK2_DATA 0x9F6Bu
#define TAG_TRACK1 0x56u
#define MAX_TLV_TAG 4

static int tlv_withheld(uint32_t tag)
{
    return tag == 0x5F20u || tag == 0x5F24u || tag == 0x9F0Bu || tag == 0x9F1Fu || tag == 0x9F20u;
}

static const char HEX[] = "0123456789ABCDEF";

/* ------------------------------------------------------------------------------------ decoding context */

#define MAX_FAULTS 3
#define MAX_WITHHELD 10 /* distinct withheld keys: 0E 3A D1 BA 4F 5F20 5F24 9F0B 9F1F 9F20 */

struct fault {
    int code;
    uint8_t raw[5];
    uint8_t raw_len;
};

struct ctx {
    tw_zvt_apdu_state *st;
    uint32_t gen;
    uint8_t *p; /* write cursor inside the reserved room */
    struct fault faults[MAX_FAULTS];
    int nfaults;
    /* BMP 06 (first one) */
    const uint8_t *tlv;
    size_t tlv_n;
    int has_tlv;
    const uint8_t *tlv_fault; /* start of the TLV object at fault (NULL: none) */
    const uint8_t *card_tech, *aid;
    size_t card_tech_n, aid_n;
    int has_card_tech, has_aid;
    /* withheld keys, in the order first met */
    char withheld[MAX_WITHHELD][4];
    uint8_t withheld_len[MAX_WITHHELD];
    int nwithheld;
    /* fixed fields */
    int has_status, has_result_code, has_text, has_reg_cc;
    uint8_t status, result_code;
    const uint8_t *text, *reg_cc;
    size_t text_n;
};

static void fault(struct ctx *c, int code, const uint8_t *raw, size_t raw_len)
{
    struct fault *f;
    if (c->nfaults == MAX_FAULTS)
        return;
    f = &c->faults[c->nfaults++];
    f->code = code;
    f->raw_len = (uint8_t)(raw_len > 5 ? 5 : raw_len);
    memcpy(f->raw, raw, f->raw_len);
}

static void withhold(struct ctx *c, const char *key, size_t n)
{
    int i;
    for (i = 0; i < c->nwithheld; i++)
        if (c->withheld_len[i] == n && memcmp(c->withheld[i], key, n) == 0)
            return;
    if (c->nwithheld == MAX_WITHHELD)
        return;
    memcpy(c->withheld[c->nwithheld], key, n);
    c->withheld_len[c->nwithheld++] = (uint8_t)n;
}

static void withhold_bmp(struct ctx *c, uint8_t tag)
{
    char key[2];
    key[0] = HEX[tag >> 4];
    key[1] = HEX[tag & 15];
    withhold(c, key, 2);
}

/* --------------------------------------------------------------------------------------- value writers */

static inline unsigned nib(const uint8_t *v, size_t i)
{
    return i & 1 ? v[i >> 1] & 15u : v[i >> 1] >> 4;
}

static uint8_t *w_hex2(uint8_t *p, uint8_t b)
{
    *p++ = 0xa2;
    *p++ = (uint8_t)HEX[b >> 4];
    *p++ = (uint8_t)HEX[b & 15];
    return p;
}

/* UTF-8 length of CP437 text; *digits counts its ASCII digits (fewer than TW_PAN_MIN_DIGITS: nothing to scrub) */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static size_t text_len_digits(const uint8_t *s, size_t n, size_t *digits)
{
    size_t i = 0, len = n, dg = 0;
    unsigned high = 0;
    /* eight ASCII bytes at a time: byte b is a digit iff b + 0x50 reaches 0x80 (b >= '0') and b + 0x46 does not
     * (b <= '9'); for bytes below 0x80 the additions never carry into the next byte. Words holding a byte >= 0x80
     * go the byte-wise way. */
    for (; i + 8 <= n; i += 8) {
        uint64_t w, m;
        memcpy(&w, s + i, 8);
        if (w & HIGHS) {
            size_t k;
            for (k = 0; k < 8; k++) {
                high |= s[i + k];
                dg += (uint8_t)(s[i + k] - '0') <= 9u;
            }
            continue;
        }
        m = (w + 0x50 * ONES) & ~(w + 0x46 * ONES) & HIGHS;
        dg += (size_t)(((m >> 7) * ONES) >> 56);
    }
    for (; i < n; i++) {
        high |= s[i];
        dg += (uint8_t)(s[i] - '0') <= 9u;
    }
    *digits = dg;
    if (high & 0x80)
        for (i = 0; i < n; i++)
            if (s[i] >= 0x80)
                len += cp437[s[i] - 0x80].n - 1u;
    return len;
}

static size_t text_len(const uint8_t *s, size_t n)
{
    size_t digits;
    return text_len_digits(s, n, &digits);
}

static uint8_t *w_text_body(uint8_t *p, const uint8_t *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        uint8_t ch = s[i];
        if (ch < 0x80) {
            *p++ = ch;
        } else {
            const struct utf8 *u = &cp437[ch - 0x80];
            memcpy(p, u->b, 3);
            p += u->n;
        }
    }
    return p;
}

/* CP437 text as a scrubbed str */
static uint8_t *w_text(uint8_t *p, const uint8_t *s, size_t n)
{
    size_t digits, len = text_len_digits(s, n, &digits);
    uint8_t *body;
    p = tw_mpw_str_header(p, len);
    body = p;
    if (len == n) { /* ASCII */
        memcpy(p, s, n);
        p += n;
    } else {
        p = w_text_body(p, s, n);
    }
    if (digits >= TW_PAN_MIN_DIGITS)
        tw_card_scrub(body, len);
    return p;
}

static uint8_t *w_bytes(uint8_t *p, const uint8_t *s, size_t n)
{
    p = tw_mpw_bin(p, s, n);
    tw_card_scrub(p - n, n);
    return p;
}

static int bcd_ok(const uint8_t *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if ((v[i] >> 4) > 9 || (v[i] & 15) > 9)
            return 0;
    return 1;
}

/* An application identifier (payment.md section 2): 5 to 16 bytes whose first nibble is A or D (the registered
 * and national RID categories of ISO/IEC 7816-5). Anything else in an AID's place may be card data. */
static int looks_like_aid(const uint8_t *v, size_t n)
{
    return n >= 5 && n <= 16 && ((v[0] >> 4) == 0xA || (v[0] >> 4) == 0xD);
}

static uint8_t *w_digits_body(uint8_t *p, const uint8_t *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        *p++ = (uint8_t)('0' + (v[i] >> 4));
        *p++ = (uint8_t)('0' + (v[i] & 15));
    }
    return p;
}

static uint8_t *w_digits(uint8_t *p, const uint8_t *v, size_t n)
{
    p = tw_mpw_str_header(p, 2 * n);
    return w_digits_body(p, v, n);
}

/* the last three digits of a 2-byte BCD currency code */
static uint8_t *w_currency(uint8_t *p, const uint8_t *v)
{
    *p++ = 0xa3;
    *p++ = (uint8_t)('0' + (v[0] & 15));
    *p++ = (uint8_t)('0' + (v[1] >> 4));
    *p++ = (uint8_t)('0' + (v[1] & 15));
    return p;
}

static uint64_t bcd_value(const uint8_t *v, size_t n)
{
    uint64_t x = 0;
    size_t i;
    for (i = 0; i < n; i++)
        x = x * 100 + (uint64_t)(v[i] >> 4) * 10 + (v[i] & 15);
    return x;
}

/* BCD PAN: the number of characters (trailing F nibbles dropped), or -1 for a nibble A-D, or F / E misplaced */
static long pan_len(const uint8_t *v, size_t n)
{
    size_t end = 2 * n, i;
    while (end > 0 && nib(v, end - 1) == 15)
        end--;
    for (i = 0; i < end; i++) {
        unsigned x = nib(v, i);
        if (x > 9 && x != 14)
            return -1;
    }
    return (long)end;
}

static uint8_t *w_pan(uint8_t *p, const uint8_t *v, size_t len)
{
    size_t i;
    uint8_t *body;
    p = tw_mpw_str_header(p, len);
    body = p;
    for (i = 0; i < len; i++) {
        unsigned x = nib(v, i);
        *p++ = (uint8_t)(x <= 9 ? '0' + x : '*');
    }
    tw_card_mask_pan(body, len, body);
    return p;
}

/* {"pan": masked} from nibble-packed track data (digits or E before the first D), or {} */
static uint8_t *w_track(uint8_t *p, const uint8_t *v, size_t n)
{
    size_t i, total = 2 * n;
    for (i = 0; i < total; i++) {
        unsigned x = nib(v, i);
        if (x == 13)
            break;
        if (x > 9 && x != 14)
            return tw_mpw_map(p, 0);
    }
    if (i == 0 || i == total)
        return tw_mpw_map(p, 0);
    p = tw_mpw_map(p, 1);
    p = TW_MPW_LIT(p, "pan");
    return w_pan(p, v, i);
}

static uint8_t *w_track1(uint8_t *p, const uint8_t *v, size_t n)
{
    size_t j;
    uint8_t *body;
    if (n < 1 || v[0] != 'B')
        return tw_mpw_map(p, 0);
    for (j = 1; j < n && v[j] != '^'; j++)
        if (v[j] < '0' || v[j] > '9')
            return tw_mpw_map(p, 0);
    if (j == n || j == 1)
        return tw_mpw_map(p, 0);
    p = tw_mpw_map(p, 1);
    p = TW_MPW_LIT(p, "pan");
    p = tw_mpw_str_header(p, j - 1);
    body = p;
    memcpy(p, v + 1, j - 1);
    p += j - 1;
    tw_card_mask_pan(body, j - 1, body);
    return p;
}

/* patches a one-byte container header at h once its count is known; returns the (maybe moved) end */
static uint8_t *patch(uint8_t *h, uint8_t *end, uint32_t count, int map)
{
    if (count <= 15) {
        *h = (uint8_t)((map ? 0x80 : 0x90) | count);
        return end;
    }
    memmove(h + 3, h + 1, (size_t)(end - (h + 1)));
    h[0] = map ? 0xde : 0xdc; /* count < 65536: every element takes at least 2 input bytes */
    h[1] = (uint8_t)(count >> 8);
    h[2] = (uint8_t)count;
    return end + 2;
}

/* ------------------------------------------------------------------------------------------ BMP stream */

static int bmp_fault(struct ctx *c, int code, uint8_t tag)
{
    fault(c, code, &tag, 1);
    return 1;
}

/* Walks the BMP stream d[pos..n), writing each kept BMP as a map entry; *count counts them. Returns 1 on a
 * fault (recorded), else 0. */
static int walk_bmps(struct ctx *c, const uint8_t *d, size_t n, size_t pos, uint32_t *count)
{
    tw_zvt_apdu_state *st = c->st;
    while (pos < n) {
        uint8_t tag = d[pos];
        const struct bmp *b = &bmp_table[tag];
        const uint8_t *v;
        size_t size;
        uint8_t *p;
        long plen = 0;
        if (b->kind == K_NONE)
            return bmp_fault(c, TW_ERR_UNKNOWN_BMP, tag);
        pos++;
        if (b->len == LEN_BER) {
            uint8_t x;
            if (pos >= n)
                return bmp_fault(c, TW_ERR_BMP_OVERRUN, tag);
            x = d[pos];
            if (x < 0x80) {
                size = x;
                pos += 1;
            } else if (x == 0x81) {
                if (pos + 1 >= n)
                    return bmp_fault(c, TW_ERR_BMP_OVERRUN, tag);
                size = d[pos + 1];
                pos += 2;
            } else if (x == 0x82) {
                if (pos + 2 >= n)
                    return bmp_fault(c, TW_ERR_BMP_OVERRUN, tag);
                size = (size_t)d[pos + 1] << 8 | d[pos + 2];
                pos += 3;
            } else {
                return bmp_fault(c, TW_ERR_BAD_TLV, tag);
            }
        } else if (b->len < 0) {
            size_t k = (size_t)(-b->len), j;
            if (k > n - pos)
                return bmp_fault(c, TW_ERR_BMP_OVERRUN, tag);
            size = 0;
            for (j = 0; j < k; j++) {
                uint8_t x = d[pos + j];
                if ((x & 0xF0) != 0xF0 || (x & 15) > 9)
                    return bmp_fault(c, TW_ERR_BAD_LLVAR, tag);
                size = size * 10 + (x & 15u);
            }
            pos += k;
        } else {
            size = (size_t)b->len;
        }
        if (size > n - pos)
            return bmp_fault(c, TW_ERR_BMP_OVERRUN, tag);
        v = d + pos;
        pos += size;
        if (st->seen[tag] == c->gen)
            continue; /* a repeated BMP: the first one wins */
        st->seen[tag] = c->gen;
        switch (b->kind) {
        case K_TLV:
            c->tlv = v;
            c->tlv_n = size;
            c->has_tlv = 1;
            continue;
        case K_AID:
            if (looks_like_aid(v, size))
                break;
            withhold_bmp(c, tag); /* not an AID: maybe card data */
            continue;
        case K_WITHHELD:
            withhold_bmp(c, tag);
            continue;
        case K_AMOUNT:
        case K_DIGITS:
            if (!bcd_ok(v, size))
                return bmp_fault(c, TW_ERR_BAD_BCD, tag);
            break;
        case K_PAN:
            plen = pan_len(v, size);
            if (plen < 0)
                return bmp_fault(c, TW_ERR_BAD_BCD, tag);
            break;
        case K_TOTALS: {
            int i;
            if (size != TOTALS_LEN)
                return bmp_fault(c, TW_ERR_BAD_FIELD_LENGTH, tag);
            if (!bcd_ok(v, 4))
                return bmp_fault(c, TW_ERR_BAD_BCD, tag);
            for (i = 0; i < 7; i++)
                if (!bcd_ok(v + 5 + 7 * i, 6))
                    return bmp_fault(c, TW_ERR_BAD_BCD, tag);
            break;
        }
        default:
            break;
        }
        p = w_hex2(c->p, tag);
        switch (b->kind) {
        case K_INT: p = tw_mpw_uint(p, v[0]); break;
        case K_AMOUNT: p = tw_mpw_uint(p, bcd_value(v, size)); break;
        case K_DIGITS: p = w_digits(p, v, size); break;
        case K_TEXT: p = w_text(p, v, size); break;
        case K_PAN: p = w_pan(p, v, (size_t)plen); break;
        case K_TRACK: p = w_track(p, v, size); break;
        case K_TRACK1: p = w_track1(p, v, size); break;
        default: p = w_bytes(p, v, size); break; /* K_BYTES, K_TOTALS */
        }
        c->p = p;
        (*count)++;
        st->kept[tag] = c->gen;
        st->val[tag] = v;
        st->len[tag] = (uint32_t)size;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ TLV */

struct tlv_obj {
    const uint8_t *start, *val;
    size_t tag_len, size, next; /* next: position after the object */
    uint32_t tag;
    uint8_t t0;
};

/* Reads the object at v[pos..n); 0 when its tag or length is malformed or runs past n. */
static int tlv_read(const uint8_t *v, size_t n, size_t pos, struct tlv_obj *o)
{
    size_t start = pos, size;
    uint8_t x;
    o->start = v + pos;
    o->t0 = v[pos];
    o->tag = v[pos];
    pos++;
    if ((o->t0 & 0x1F) == 0x1F) {
        for (;;) {
            if (pos >= n || pos - start >= MAX_TLV_TAG)
                return 0;
            x = v[pos++];
            o->tag = o->tag << 8 | x;
            if (!(x & 0x80))
                break;
        }
    }
    o->tag_len = pos - start;
    if (pos >= n)
        return 0;
    x = v[pos];
    if (x < 0x80) {
        size = x;
        pos += 1;
    } else if (x == 0x81) {
        if (pos + 1 >= n)
            return 0;
        size = v[pos + 1];
        pos += 2;
    } else if (x == 0x82) {
        if (pos + 2 >= n)
            return 0;
        size = (size_t)v[pos + 1] << 8 | v[pos + 2];
        pos += 3;
    } else {
        return 0;
    }
    if (size > n - pos)
        return 0;
    o->val = v + pos;
    o->size = size;
    o->next = pos + size;
    return 1;
}

static int tlv_fault(struct ctx *c, int code, const struct tlv_obj *o)
{
    fault(c, code, &o->t0, 1);
    c->tlv_fault = o->start;
    return 1;
}

static uint8_t *w_tag(uint8_t *p, const struct tlv_obj *o)
{
    size_t i;
    *p++ = (uint8_t)(0xa0 | (2 * o->tag_len));
    for (i = 0; i < o->tag_len; i++) {
        *p++ = (uint8_t)HEX[o->start[i] >> 4];
        *p++ = (uint8_t)HEX[o->start[i] & 15];
    }
    return p;
}

/* Writes the objects of v[0..n) as [tag, value] pairs; *count counts them. 1 on a fault (recorded). */
static int walk_tlv(struct ctx *c, const uint8_t *v, size_t n, int depth, uint32_t *count)
{
    size_t pos = 0;
    while (pos < n) {
        struct tlv_obj o;
        uint8_t *p;
        long plen = 0;
        if (!tlv_read(v, n, pos, &o)) {
            o.t0 = v[pos];
            o.start = v + pos;
            return tlv_fault(c, TW_ERR_BAD_TLV, &o);
        }
        pos = o.next;
        if (o.t0 & 0x20) {
            uint8_t *h;
            uint32_t children = 0;
            int r;
            if (depth >= TW_MAX_ZVT_TLV_DEPTH)
                return tlv_fault(c, TW_ERR_TLV_TOO_DEEP, &o);
            p = c->p;
            *p++ = 0x92;
            p = w_tag(p, &o);
            h = p++;
            c->p = p;
            r = walk_tlv(c, o.val, o.size, depth + 1, &children);
            c->p = patch(h, c->p, children, 0);
            (*count)++;
            if (r)
                return r;
            continue;
        }
        if (o.tag == TAG_CARD_TECH && o.tag_len == 2) {
            if (!c->has_card_tech) {
                c->has_card_tech = 1;
                c->card_tech = o.val;
                c->card_tech_n = o.size;
            }
        } else if (o.tag == TAG_AID && o.tag_len == 1) {
            if (!looks_like_aid(o.val, o.size)) {
                withhold(c, "4F", 2);
                continue;
            }
            if (!c->has_aid) {
                c->has_aid = 1;
                c->aid = o.val;
                c->aid_n = o.size;
            }
        }
        if (o.tag_len == 2 && tlv_withheld(o.tag)) {
            char key[4];
            key[0] = HEX[o.start[0] >> 4];
            key[1] = HEX[o.start[0] & 15];
            key[2] = HEX[o.start[1] >> 4];
            key[3] = HEX[o.start[1] & 15];
            withhold(c, key, 4);
            continue;
        }
        if (o.tag_len == 1 && o.tag == TAG_PAN) {
            plen = pan_len(o.val, o.size);
            if (plen < 0)
                return tlv_fault(c, TW_ERR_BAD_BCD, &o);
        }
        p = c->p;
        *p++ = 0x92;
        p = w_tag(p, &o);
        if (o.tag_len == 2 && o.tag == TAG_TRACK2_DATA)
            p = w_track(p, o.val, o.size);
        else if (o.tag_len != 1)
            p = w_bytes(p, o.val, o.size);
        else if (o.tag == TAG_LINE)
            p = w_text(p, o.val, o.size);
        else if (o.tag == TAG_PAN)
            p = w_pan(p, o.val, (size_t)plen);
        else if (o.tag == TAG_TRACK2)
            p = w_track(p, o.val, o.size);
        else if (o.tag == TAG_TRACK1)
            p = w_track1(p, o.val, o.size);
        else
            p = w_bytes(p, o.val, o.size);
        c->p = p;
        (*count)++;
    }
    return 0;
}

/* The 07 lines directly inside top-level constructed `parent` objects, up to the TLV fault (zvt.md section 5):
 * calls back once per line. Runs only for the few APDUs that need it, once per line, never per byte. */
typedef void (*line_fn)(void *arg, const uint8_t *s, size_t n);

static void each_line(const struct ctx *c, uint8_t parent, line_fn fn, void *arg)
{
    size_t pos = 0;
    while (pos < c->tlv_n) {
        struct tlv_obj o;
        size_t cpos = 0;
        if (c->tlv_fault && c->tlv + pos >= c->tlv_fault)
            return;
        if (!tlv_read(c->tlv, c->tlv_n, pos, &o))
            return;
        pos = o.next;
        if (o.tag_len != 1 || o.t0 != parent)
            continue;
        while (cpos < o.size) {
            struct tlv_obj k;
            if (c->tlv_fault && o.val + cpos >= c->tlv_fault)
                return;
            if (!tlv_read(o.val, o.size, cpos, &k))
                return;
            cpos = k.next;
            if (k.tag_len == 1 && k.t0 == TAG_LINE)
                fn(arg, k.val, k.size);
        }
    }
}

/* ------------------------------------------------------------------------------------- semantic events */

static int kept(const struct ctx *c, uint8_t tag)
{
    return c->st->kept[tag] == c->gen;
}
#define VAL(c, tag) ((c)->st->val[tag])
#define LEN(c, tag) ((size_t)(c)->st->len[tag])

static void emit_request(struct ctx *c, tw_out *out, const char *kind)
{
    uint8_t *p = tw_out_room(out, 160), *h;
    uint32_t n = 2;
    if (!p)
        return;
    p = TW_HEAD(p, "payment.request", 0);
    h = p - 1;
    p = TW_KEY(p, "protocol");
    p = TW_MPW_LIT(p, "zvt");
    p = TW_KEY(p, "kind");
    p = tw_mpw_str(p, kind, strlen(kind));
    if (kept(c, 0x04)) {
        p = TW_KEY(p, "amount_minor");
        p = tw_mpw_uint(p, bcd_value(VAL(c, 0x04), 6));
        n++;
    }
    if (kept(c, 0x49) || c->has_reg_cc) {
        p = TW_KEY(p, "currency");
        p = w_currency(p, kept(c, 0x49) ? VAL(c, 0x49) : c->reg_cc);
        n++;
    }
    if (kept(c, 0x87)) {
        p = TW_KEY(p, "receipt_no");
        p = w_digits(p, VAL(c, 0x87), 2);
        n++;
    }
    *h = (uint8_t)(0x80 | n);
    tw_out_commit(out, p);
}

struct lines_acc {
    size_t count, bytes;
    uint8_t *p;
};

static void measure_line(void *arg, const uint8_t *s, size_t n)
{
    struct lines_acc *a = arg;
    a->bytes += text_len(s, n) + (a->count ? 1 : 0);
    a->count++;
}

static void join_line(void *arg, const uint8_t *s, size_t n)
{
    struct lines_acc *a = arg;
    if (a->count++)
        *a->p++ = '\n';
    a->p = w_text_body(a->p, s, n);
}

static void emit_status(struct ctx *c, tw_out *out)
{
    struct lines_acc acc = {0, 0, NULL};
    const char *t = status_texts[c->status];
    uint8_t *p, *body;
    if (c->has_tlv)
        each_line(c, TAG_DISPLAY, measure_line, &acc);
    p = tw_out_room(out, 128 + acc.bytes + (t ? strlen(t) : 0));
    if (!p)
        return;
    p = TW_HEAD(p, "payment.status", (acc.count || t) ? 2 : 1);
    p = TW_KEY(p, "code");
    p = tw_mpw_uint(p, c->status);
    if (acc.count) {
        p = TW_KEY(p, "text");
        p = tw_mpw_str_header(p, acc.bytes);
        body = p;
        acc.p = p;
        acc.count = 0;
        each_line(c, TAG_DISPLAY, join_line, &acc);
        p = acc.p;
        tw_card_scrub(body, acc.bytes);
    } else if (t) {
        p = TW_KEY(p, "text");
        p = tw_mpw_str(p, t, strlen(t));
    }
    tw_out_commit(out, p);
}

static void emit_result(struct ctx *c, tw_out *out, size_t data_len)
{
    uint8_t *p = tw_out_room(out, 512 + 4 * data_len), *h;
    uint32_t n = 0;
    if (!p)
        return;
    p = TW_HEAD(p, "payment.result", 0);
    h = p - 1;
    if (kept(c, 0x27)) {
        uint8_t rc = VAL(c, 0x27)[0];
        p = TW_KEY(p, "approved");
        p = tw_mpw_bool(p, rc == 0);
        p = TW_KEY(p, "result_code");
        p = w_hex2(p, rc);
        n += 2;
    }
    if (kept(c, 0x04)) {
        p = TW_KEY(p, "amount_minor");
        p = tw_mpw_uint(p, bcd_value(VAL(c, 0x04), 6));
        n++;
    }
    if (kept(c, 0x49)) {
        p = TW_KEY(p, "currency");
        p = w_currency(p, VAL(c, 0x49));
        n++;
    }
    if (kept(c, 0x22)) {
        p = TW_KEY(p, "pan");
        p = w_pan(p, VAL(c, 0x22), (size_t)pan_len(VAL(c, 0x22), LEN(c, 0x22)));
        n++;
    }
    if (kept(c, 0x8B)) {
        p = TW_KEY(p, "card");
        p = w_text(p, VAL(c, 0x8B), LEN(c, 0x8B));
        n++;
    } else if (kept(c, 0x8A) && card_types[VAL(c, 0x8A)[0]]) {
        const char *name = card_types[VAL(c, 0x8A)[0]];
        p = TW_KEY(p, "card");
        p = tw_mpw_str(p, name, strlen(name));
        n++;
    }
    if (c->has_card_tech && c->card_tech_n == 1 && c->card_tech[0] <= 2) {
        static const char *const entry[3] = {"swipe", "chip", "contactless"};
        p = TW_KEY(p, "entry");
        p = tw_mpw_str(p, entry[c->card_tech[0]], strlen(entry[c->card_tech[0]]));
        n++;
    }
    if (kept(c, 0x29)) {
        p = TW_KEY(p, "terminal_id");
        p = w_digits(p, VAL(c, 0x29), 4);
        n++;
    }
    if (kept(c, 0x0B)) {
        p = TW_KEY(p, "trace");
        p = w_digits(p, VAL(c, 0x0B), 3);
        n++;
    }
    if (kept(c, 0x87)) {
        p = TW_KEY(p, "receipt_no");
        p = w_digits(p, VAL(c, 0x87), 2);
        n++;
    }
    if (kept(c, 0x3B)) {
        p = TW_KEY(p, "auth_code");
        p = w_text(p, VAL(c, 0x3B), 8);
        n++;
    }
    if (kept(c, 0xBA) || c->has_aid) {
        const uint8_t *v = kept(c, 0xBA) ? VAL(c, 0xBA) : c->aid;
        size_t k, vn = kept(c, 0xBA) ? 5 : c->aid_n;
        p = TW_KEY(p, "aid");
        p = tw_mpw_str_header(p, 2 * vn);
        for (k = 0; k < vn; k++) {
            *p++ = (uint8_t)HEX[v[k] >> 4];
            *p++ = (uint8_t)HEX[v[k] & 15];
        }
        n++;
    }
    if (kept(c, 0xAA) || kept(c, 0x0D)) {
        p = TW_KEY(p, "date");
        p = kept(c, 0xAA) ? w_digits(p, VAL(c, 0xAA), 3) : w_digits(p, VAL(c, 0x0D), 2);
        n++;
    }
    if (kept(c, 0x0C)) {
        p = TW_KEY(p, "time");
        p = w_digits(p, VAL(c, 0x0C), 3);
        n++;
    }
    *h = (uint8_t)(0x80 | n);
    tw_out_commit(out, p);
}

static void emit_eod(struct ctx *c, tw_out *out)
{
    const uint8_t *v = VAL(c, 0x60);
    uint8_t *p = tw_out_room(out, 768); /* head ~60 bytes + 7 groups of at most 60 */
    uint64_t count = 0, amount = 0;
    uint32_t groups = 0;
    int i;
    if (!p)
        return;
    for (i = 0; i < 7; i++) {
        count += v[4 + 7 * i];
        amount += bcd_value(v + 5 + 7 * i, 6);
        groups += v[4 + 7 * i] != 0;
    }
    p = TW_HEAD(p, "payment.eod", 3);
    p = TW_KEY(p, "count");
    p = tw_mpw_uint(p, count);
    p = TW_KEY(p, "amount_minor");
    p = tw_mpw_uint(p, kept(c, 0x04) ? bcd_value(VAL(c, 0x04), 6) : amount);
    p = TW_KEY(p, "totals");
    p = tw_mpw_array(p, groups);
    for (i = 0; i < 7; i++) {
        if (!v[4 + 7 * i])
            continue;
        p = tw_mpw_map(p, 3);
        p = TW_KEY(p, "card");
        p = tw_mpw_str(p, totals_cards[i], strlen(totals_cards[i]));
        p = TW_KEY(p, "count");
        p = tw_mpw_uint(p, v[4 + 7 * i]);
        p = TW_KEY(p, "amount_minor");
        p = tw_mpw_uint(p, bcd_value(v + 5 + 7 * i, 6));
    }
    tw_out_commit(out, p);
}

static void receipt_line(void *arg, const uint8_t *s, size_t n)
{
    tw_out *out = arg;
    uint8_t *p = tw_out_room(out, 64 + 3 * n);
    if (!p)
        return;
    p = TW_HEAD(p, "payment.receipt_line", 1);
    p = TW_KEY(p, "text");
    p = w_text(p, s, n);
    tw_out_commit(out, p);
}

static void semantic(struct ctx *c, tw_out *out, uint8_t cls, uint8_t instr, size_t data_len)
{
    const char *kind = request_kind(cls, instr);
    if (kind) {
        emit_request(c, out, kind);
        return;
    }
    switch (cls << 8 | instr) {
    case 0x04FF:
        if (c->has_status)
            emit_status(c, out);
        break;
    case 0x040F:
        if (kept(c, 0x60))
            emit_eod(c, out);
        else
            emit_result(c, out, data_len);
        break;
    case 0x061E:
        if (c->has_result_code) {
            uint8_t *p = tw_out_room(out, 96);
            if (!p)
                return;
            p = TW_HEAD(p, "payment.result", 2);
            p = TW_KEY(p, "approved");
            p = tw_mpw_bool(p, 0);
            p = TW_KEY(p, "result_code");
            p = w_hex2(p, c->result_code);
            tw_out_commit(out, p);
        }
        break;
    case 0x06D1:
        if (c->has_text)
            receipt_line(out, c->text, c->text_n);
        break;
    case 0x06D3:
        if (c->has_tlv)
            each_line(c, TAG_PRINT, receipt_line, out);
        break;
    default:
        break;
    }
}

/* --------------------------------------------------------------------------------------------- decode */

static void reverse(uint8_t *a, size_t n)
{
    size_t i;
    for (i = 0; i < n / 2; i++) {
        uint8_t t = a[i];
        a[i] = a[n - 1 - i];
        a[n - 1 - i] = t;
    }
}

void tw_zvt_apdu_decode(tw_zvt_apdu_state *st, const uint8_t *apdu, size_t count, unsigned hl, uint64_t offset,
                        int strict, int quote_header, tw_out *out)
{
    struct ctx c;
    uint8_t cls = apdu[0], instr = apdu[1];
    uint32_t declared = apdu[2] != 0xFF ? apdu[2] : (uint32_t)apdu[3] | (uint32_t)apdu[4] << 8;
    size_t n = count - hl < declared ? count - hl : declared;
    const uint8_t *d = apdu + hl;
    const struct command *cmd = command_of(cls, instr);
    size_t start = out->len, end;
    size_t hq = quote_header ? hl : 0; /* the header bytes a fault of the whole APDU may quote */
    uint8_t *p, *h;
    uint32_t nkeys = 4;
    int i;

    /* only the flags and counters need a value: the rest is written before it is read (a memset of the whole
     * context was a measurable share of a small APDU's cost) */
    c.st = st;
    c.nfaults = c.has_tlv = c.has_card_tech = c.has_aid = c.nwithheld = 0;
    c.has_status = c.has_result_code = c.has_text = c.has_reg_cc = 0;
    c.tlv_fault = NULL;
    c.tlv = c.card_tech = c.aid = c.text = c.reg_cc = NULL;
    c.tlv_n = c.card_tech_n = c.aid_n = c.text_n = 0;
    c.status = c.result_code = 0;
    if (++st->gen == 0) { /* after 2^32 APDUs: forget every stamp once */
        memset(st->seen, 0, sizeof(st->seen));
        memset(st->kept, 0, sizeof(st->kept));
        st->gen = 1;
    }
    c.gen = st->gen;
    if (count - hl != declared)
        fault(&c, TW_ERR_APDU_LENGTH_MISMATCH, apdu, hq);

    /* every decoded form is at most 8 output bytes per input byte, plus a fixed part */
    p = tw_out_room(out, 512 + 12 * n);
    if (!p)
        return;
    p = TW_HEAD(p, "zvt.apdu", 0);
    h = p - 1;
    p = TW_KEY(p, "class");
    p = tw_mpw_uint(p, cls);
    p = TW_KEY(p, "instr");
    p = tw_mpw_uint(p, instr);
    p = TW_KEY(p, "name");
    p = tw_mpw_str(p, cmd->name, cmd->name_len);
    p = TW_KEY(p, "length");
    p = tw_mpw_uint(p, declared);

    {
        enum layout layout = layout_of(cls, instr);
        size_t pos = 0;
        int walk = 1;
        switch (layout) {
        case L_NONE:
            walk = 0;
            break;
        case L_BMP:
            break;
        case L_NACK:
            p = TW_KEY(p, "error");
            p = tw_mpw_uint(p, instr);
            nkeys++;
            break;
        case L_PASSWORD:
            if (n < 3) {
                fault(&c, TW_ERR_MISSING_FIELD, apdu, hq);
                walk = 0;
            }
            pos = 3;
            break;
        case L_REGISTRATION:
            if (n < 4) {
                fault(&c, TW_ERR_MISSING_FIELD, apdu, hq);
                walk = 0;
                break;
            }
            p = TW_KEY(p, "config");
            p = tw_mpw_uint(p, d[3]);
            nkeys++;
            pos = 4;
            if (n - pos >= 2 && d[pos] != 0x03 && d[pos] != 0x06) {
                if (!bcd_ok(d + pos, 2)) {
                    fault(&c, TW_ERR_BAD_BCD, apdu, hq);
                    walk = 0;
                    break;
                }
                p = TW_KEY(p, "currency");
                p = w_digits(p, d + pos, 2);
                nkeys++;
                c.has_reg_cc = 1;
                c.reg_cc = d + pos;
                pos += 2;
            }
            break;
        case L_STATUS:
            if (n < 1) {
                fault(&c, TW_ERR_MISSING_FIELD, apdu, hq);
                walk = 0;
                break;
            }
            c.has_status = 1;
            c.status = d[0];
            p = TW_KEY(p, "status");
            p = tw_mpw_uint(p, d[0]);
            nkeys++;
            pos = 1;
            if (pos < n && (d[pos] != 0x06 || n - pos == 1)) {
                p = TW_KEY(p, "timeout");
                p = tw_mpw_uint(p, d[pos]);
                nkeys++;
                pos++;
            }
            break;
        case L_PRINT_LINE:
            walk = 0;
            if (n < 1) {
                fault(&c, TW_ERR_MISSING_FIELD, apdu, hq);
                break;
            }
            p = TW_KEY(p, "attribute");
            p = tw_mpw_uint(p, d[0]);
            p = TW_KEY(p, "text");
            p = w_text(p, d + 1, n - 1);
            nkeys += 2;
            c.has_text = 1;
            c.text = d + 1;
            c.text_n = n - 1;
            break;
        case L_RESULT:
            if (n < 1) {
                fault(&c, TW_ERR_MISSING_FIELD, apdu, hq);
                walk = 0;
                break;
            }
            c.has_result_code = 1;
            c.result_code = d[0];
            p = TW_KEY(p, "result_code");
            p = tw_mpw_uint(p, d[0]);
            nkeys++;
            pos = 1;
            break;
        }
        if (walk && pos < n) {
            uint8_t *key = p, *mh;
            uint32_t kept_n = 0;
            p = TW_KEY(p, "bmps");
            mh = p++;
            c.p = p;
            walk_bmps(&c, d, n, pos, &kept_n);
            if (kept_n) {
                p = patch(mh, c.p, kept_n, 1);
                nkeys++;
            } else {
                p = key;
            }
        }
    }
    if (c.has_tlv) {
        uint32_t objs = 0;
        p = TW_KEY(p, "tlv");
        c.p = p + 1;
        walk_tlv(&c, c.tlv, c.tlv_n, 1, &objs);
        p = patch(p, c.p, objs, 0);
        nkeys++;
    }
    if (c.nwithheld) {
        p = TW_KEY(p, "withheld");
        p = tw_mpw_array(p, (uint32_t)c.nwithheld);
        for (i = 0; i < c.nwithheld; i++)
            p = tw_mpw_str(p, c.withheld[i], c.withheld_len[i]);
        nkeys++;
    }
    *h = (uint8_t)(0x80 | nkeys);
    tw_out_commit(out, p);
    end = out->len;

    if (c.nfaults) {
        if (strict)
            out->len = start; /* the APDU is rejected: only its errors */
        for (i = 0; i < c.nfaults; i++)
            tw_emit_error(out, c.faults[i].code, offset, c.faults[i].raw, c.faults[i].raw_len);
        if (strict || out->oom)
            return;
        /* errors first: rotate [start, end) [end, len) */
        reverse(out->data + start, end - start);
        reverse(out->data + end, out->len - end);
        reverse(out->data + start, out->len - start);
    }
    semantic(&c, out, cls, instr, n);
}
