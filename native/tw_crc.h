/* Checksums of the payment-terminal links: CRC-16/KERMIT (ZVT serial), CRC-16/XMODEM, XOR-LRC and 8-bit sum.
 *
 * Every function is incremental: it takes the running value and returns it updated over p[0..n), so a stream
 * can be checked as it arrives. Start with 0 for all four (the initial value of each algorithm). Table-driven
 * (KERMIT sliced by 8: 8 KiB of tables; XMODEM byte-wise: 512 bytes); no assumption about byte order or alignment.
 *
 *   CRC-16/KERMIT: poly 0x1021 reflected (0x8408), init 0, reflected in/out, no final xor; check = 0x2189
 *   CRC-16/XMODEM: poly 0x1021, init 0, not reflected, no final xor;                        check = 0x31C3
 * ("check" is the CRC of the ASCII bytes "123456789".)
 */
#ifndef TW_CRC_H
#define TW_CRC_H

#include <stddef.h>
#include <stdint.h>

uint16_t tw_crc16_kermit(uint16_t crc, const uint8_t *p, size_t n);
uint16_t tw_crc16_xmodem(uint16_t crc, const uint8_t *p, size_t n);
/* XOR of all bytes (the LRC of ECR links that use one) */
uint8_t tw_lrc_xor(uint8_t lrc, const uint8_t *p, size_t n);
/* Sum of all bytes modulo 256 */
uint8_t tw_sum8(uint8_t sum, const uint8_t *p, size_t n);

#endif
