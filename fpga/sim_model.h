/* The Verilator model of hw/rtl/tap_top.v behind a C interface (sim_model.cpp is the only
 * C++ in strobe, because Verilator generates C++). Records the model emits are queued here;
 * the host side pops them. */
#ifndef STROBE_SIM_MODEL_H
#define STROBE_SIM_MODEL_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sim_model;
struct sim_model *sim_model_new(void);
void sim_model_free(struct sim_model *m);
/* n clock cycles with no frame */
void sim_model_tick(struct sim_model *m, uint64_t n);
/* AXI4-Lite: write returns BRESP (0 OKAY, 2 SLVERR); read returns the data */
int sim_model_write(struct sim_model *m, uint8_t addr, uint32_t data);
uint32_t sim_model_read(struct sim_model *m, uint8_t addr);
/* one frame, 8 bytes a clock, through the pass-through (its output is checked bit for bit
 * against the input; returns -1 if it differs) */
int sim_model_frame(struct sim_model *m, const uint8_t *bytes, size_t len);
/* 1 and the 32 record bytes (little-endian), or 0 when none is queued */
int sim_model_record(struct sim_model *m, uint8_t out[32]);

#ifdef __cplusplus
}
#endif
#endif
