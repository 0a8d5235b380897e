// C wrapper of the Verilator model: clocking, AXI4-Lite transactions, frames in, records out.
#include "sim_model.h"

#include "Vtap_top.h"
#include "verilated.h"

#include <cstring>
#include <deque>
#include <vector>

struct sim_model {
    VerilatedContext ctx;
    Vtap_top *top;
    std::deque<std::vector<uint8_t>> records;
    std::vector<uint8_t> out; // pass-through output of the current frame
    bool out_bad = false;
};

// one clock: inputs set before the rising edge; outputs sampled before it
static void cycle(sim_model *m)
{
    Vtap_top *t = m->top;
    t->m_tready = 1;
    t->rec_tready = 1;
    t->clk = 0;
    t->eval();
    bool take_rec = t->rec_tvalid;
    uint8_t rec[32];
    if (take_rec)
        for (int w = 0; w < 8; w++) std::memcpy(rec + 4 * w, &t->rec_tdata[w], 4);
    bool take_out = t->m_tvalid;
    uint64_t data = t->m_tdata;
    uint8_t keep = t->m_tkeep;
    t->clk = 1;
    t->eval();
    if (take_rec) m->records.emplace_back(rec, rec + 32);
    if (take_out)
        for (int i = 0; i < 8; i++)
            if (keep >> i & 1) m->out.push_back((uint8_t)(data >> (8 * i)));
}

extern "C" {

sim_model *sim_model_new(void)
{
    sim_model *m = new sim_model;
    m->top = new Vtap_top(&m->ctx);
    m->top->rst = 1;
    for (int i = 0; i < 4; i++) cycle(m);
    m->top->rst = 0;
    cycle(m);
    return m;
}

void sim_model_free(sim_model *m)
{
    if (!m) return;
    m->top->final();
    delete m->top;
    delete m;
}

void sim_model_tick(sim_model *m, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) cycle(m);
}

int sim_model_write(sim_model *m, uint8_t addr, uint32_t data)
{
    Vtap_top *t = m->top;
    t->awaddr = addr;
    t->wdata = data;
    t->awvalid = 1;
    t->wvalid = 1;
    t->bready = 1;
    int guard = 0;
    while (!t->awready && guard++ < 100) cycle(m);
    t->awvalid = 0;
    t->wvalid = 0;
    while (!t->bvalid && guard++ < 100) cycle(m);
    int resp = t->bresp;
    cycle(m);
    return resp;
}

uint32_t sim_model_read(sim_model *m, uint8_t addr)
{
    Vtap_top *t = m->top;
    t->araddr = addr;
    t->arvalid = 1;
    t->rready = 1;
    int guard = 0;
    while (!t->arready && guard++ < 100) cycle(m);
    t->arvalid = 0;
    while (!t->rvalid && guard++ < 100) cycle(m);
    uint32_t v = t->rdata;
    cycle(m);
    return v;
}

int sim_model_frame(sim_model *m, const uint8_t *bytes, size_t len)
{
    Vtap_top *t = m->top;
    m->out.clear();
    for (size_t b = 0; b < len; b += 8) {
        uint64_t data = 0;
        uint8_t keep = 0;
        for (size_t k = 0; k < 8 && b + k < len; k++) {
            data |= (uint64_t)bytes[b + k] << (8 * k);
            keep |= (uint8_t)(1u << k);
        }
        t->s_tdata = data;
        t->s_tkeep = keep;
        t->s_tlast = b + 8 >= len;
        t->s_tvalid = 1;
        cycle(m); // s_tready is always high: m_tready is
    }
    t->s_tvalid = 0;
    t->s_tlast = 0;
    cycle(m); // the last beat out of the register stage
    return m->out.size() == len && !std::memcmp(m->out.data(), bytes, len) ? 0 : -1;
}

int sim_model_record(sim_model *m, uint8_t out[32])
{
    if (m->records.empty()) return 0;
    std::memcpy(out, m->records.front().data(), 32);
    m->records.pop_front();
    return 1;
}
}
