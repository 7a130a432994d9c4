/* Every length that comes from the wire is bounded; each bound lives here, once, with its reason.
 * docs/protocols/escpos.md section 11 is the contract for the ESC/POS ones. */
#ifndef TW_BOUNDS_H
#define TW_BOUNDS_H

/* Code points in one printed line. 80 mm paper holds at most 64 columns in font B; 16 times that covers any
 * real line while bounding memory. A longer line is split (line_too_long). */
#define TW_MAX_LINE_CHARS 1024

/* Data bytes of a function-A barcode (GS k m d1..dk NUL): Epson's largest. */
#define TW_MAX_BARCODE 255

/* Stored 2D-code data: the largest QR code (version 40, numeric) holds 7089 characters. */
#define TW_MAX_CODE2D 7089

/* Image data kept per image: a 1024-dot x 32768-row image; python-escpos splits images at 960 rows. */
#define TW_MAX_IMAGE_BYTES (4u * 1024u * 1024u)

/* Outstanding status requests a till waits on; older ones are dropped first. */
#define TW_MAX_REQUESTS 16

/* Data bytes of a printer's block reply (header ... NUL): Epson's longest GS I reply. */
#define TW_MAX_INFO 80

/* Bytes an automatic status block (ASB) may span: it is 4 bytes; XON/XOFF may fall between them, a few at
 * most. */
#define TW_MAX_ASB_SPAN 8

/* Bytes of raw input quoted in a protocol.error event. */
#define TW_MAX_ERROR_RAW 32

/* Unstuffed bytes of one ZVT serial frame (docs/protocols/zvt-link.md section 3): the largest APDU, a 5-byte
 * header (CLASS INSTR FF len-lo len-hi) plus 65535 data bytes. A longer frame is abandoned (frame_too_long). */
#define TW_MAX_ZVT_APDU 65540

/* Nesting levels of constructed TLV objects inside a ZVT TLV container (docs/protocols/zvt.md section 4.3): ZVT
 * nests three at most (container, 24/25, 07); 8 leaves room for vendors while bounding recursion and output
 * nesting. A constructed object at level 8 is tlv_too_deep. */
#define TW_MAX_ZVT_TLV_DEPTH 8

/* Generic ECR links (docs/protocols/ecr.md section 2). max_frame, the payload bytes of one frame, is a setting
 * (presets: 512 for Concert, whose spec allows 512 data bytes, 4096-8192 for the others); this is its largest
 * value: 64 KiB is far beyond any ECR message (a Transbank response with its voucher is a few KiB) and bounds the
 * one buffer a decoder allocates. A longer frame is abandoned (frame_over_limit). */
#define TW_MAX_ECR_FRAME 65536
/* Layout tables handed to the ECR decoder: messages per dialect, items per message, the highest field index an
 * item reads, the length of a key, event type, code or dialect name, and of a constant value. Generous for the
 * presets (4 messages, 12 items, field 16), small enough to keep the per-frame work bounded. */
#define TW_ECR_MAX_MESSAGES 64
#define TW_ECR_MAX_ITEMS 32
#define TW_ECR_MAX_FIELD_INDEX 63
#define TW_ECR_MAX_NAME 64
#define TW_ECR_MAX_VALUE 255
/* Digits of an integer a layout converts (amounts): 12 keeps every PAN (13 digits or more) out of integers. */
#define TW_ECR_MAX_INT_DIGITS 12

/* Length framing and ISO 8583 (docs/protocols/iso8583.md sections 1, 4 and 5). */
/* Link header bytes after a length prefix: a TPDU is 5; 32 covers any vendor header. */
#define TW_MAX_LINK_HEADER 32
/* Bytes after the prefix of a lenframe frame: terminal documents (nexo JSON/XML) are a few KiB. */
#define TW_MAX_LENFRAME (1u << 20)
/* Bytes after the prefix of an ISO 8583 frame (or the whole stream with framing none): the largest len2 frame;
 * real messages are under 2 KiB. */
#define TW_MAX_ISO_FRAME 65535u
/* A spec field's largest length (LLLL). */
#define TW_MAX_ISO_FIELD 9999u
/* Nesting of constructed BER-TLV tags in a TLV field (EMV uses 2). */
#define TW_MAX_ISO_TLV_DEPTH 4
/* Bytes of one BER-TLV tag. */
#define TW_MAX_ISO_TAG_BYTES 4

/* Barcode scanners (docs/protocols/scanner.md section 3). */
/* Bytes of one label, prefix and AIM id included, suffix excluded: the largest QR code holds 7089 digits, the
 * largest 2D symbols' byte payloads are below that; 8 KiB bounds the label buffers allocated with the decoder.
 * A longer label is dropped (label_too_long). */
#define TW_MAX_SCAN_LABEL 8192
/* Bytes of the configured label prefix (scanners allow a few characters). */
#define TW_MAX_SCAN_PREFIX 8

/* Magnetic stripe tracks (docs/protocols/msr.md section 3): characters from start sentinel to end sentinel. ISO/IEC
 * 7811 tracks hold 79 (track 1), 40 (track 2) and 107 (track 3) characters, the LRC included; a longer track is
 * dropped (msr_track_too_long). */
#define TW_MAX_MSR_TRACK1 78
#define TW_MAX_MSR_TRACK2 39
#define TW_MAX_MSR_TRACK3 106

/* Scales (docs/protocols/scale.md section 2). */
/* Bytes of one scale message between its framing bytes: real replies are under 32 bytes; a Magellan line may be a
 * GS1 DataBar Expanded label (74 characters) with its S08R prefix. A longer one is dropped (scale_frame_too_long). */
#define TW_MAX_SCALE_FRAME 256
/* NCI status bytes in one reply (two or three in practice). */
#define TW_MAX_SCALE_STATUS 8
/* Digits of one weight: 9 keep value_milli (digits x 1000) far inside int64. */
#define TW_MAX_SCALE_DIGITS 9

/* Customer displays (docs/protocols/display.md section 5). */
/* Columns and rows of the modelled display: pole displays are 20 x 2, the largest character VFDs 40 x 4. The grid
 * is allocated inside the decoder. */
#define TW_MAX_DISPLAY_COLUMNS 40
#define TW_MAX_DISPLAY_ROWS 4
/* Characters of a CD5220 ESC Q D marquee message (the P07303 manual: m <= 40). */
#define TW_MAX_DISPLAY_MARQUEE 40

#endif
