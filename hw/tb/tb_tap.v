// Self-checking testbench of tap_top on frames of real strobe <-> strobe-emu traffic
// (frames.py): every frame passes bit for bit under random gaps and back-pressure, back to
// back at times; each frame's record carries the reference model's fields and the time its
// first beat passed; a stalled record stream drops records, counted, with the gaps visible
// in the record sequence; registers read back; ADJ moves the clock. Prints PASS or FAIL.
`timescale 1ns/1ps
module tb_tap;
    localparam MAXB = 4 * 1024 * 1024, MAXF = 8192;
    localparam [63:0] T0 = 64'd1700000000000000000;
    reg clk = 0, rst = 1;
    always #2 clk = ~clk; // 250 MHz: 4 ns per clock, the tap's default increment

    reg  [63:0] s_tdata; reg [7:0] s_tkeep; reg s_tvalid = 0, s_tlast = 0; wire s_tready;
    wire [63:0] m_tdata; wire [7:0] m_tkeep; wire m_tvalid, m_tlast; reg m_tready = 1;
    wire [255:0] rec_tdata; wire rec_tvalid; reg rec_tready = 1;
    reg [7:0] awaddr = 0, araddr = 0; reg awvalid = 0, wvalid = 0, bready = 1, arvalid = 0, rready = 1;
    reg [31:0] wdata = 0;
    wire awready, wready, bvalid, arready, rvalid; wire [1:0] bresp, rresp; wire [31:0] rdata;

    tap_top dut (.clk(clk), .rst(rst), .s_tdata(s_tdata), .s_tkeep(s_tkeep), .s_tvalid(s_tvalid),
                 .s_tready(s_tready), .s_tlast(s_tlast), .m_tdata(m_tdata), .m_tkeep(m_tkeep),
                 .m_tvalid(m_tvalid), .m_tready(m_tready), .m_tlast(m_tlast), .rec_tdata(rec_tdata),
                 .rec_tvalid(rec_tvalid), .rec_tready(rec_tready), .awaddr(awaddr), .awvalid(awvalid),
                 .awready(awready), .wdata(wdata), .wvalid(wvalid), .wready(wready), .bresp(bresp),
                 .bvalid(bvalid), .bready(bready), .araddr(araddr), .arvalid(arvalid),
                 .arready(arready), .rdata(rdata), .rresp(rresp), .rvalid(rvalid), .rready(rready));

    reg [7:0]   bytes [0:MAXB-1];
    reg [15:0]  lens [0:MAXF-1];
    reg [143:0] want [0:MAXF-1]; // hash seq plen flags info sport dport flen
    integer nframes, nbytes, errors = 0, cycle = 0;
    integer first_byte [0:MAXF-1];
    integer sof_cycle [0:MAXF-1];
    always @(posedge clk) cycle <= cycle + 1;

    reg [31:0] lfsr = 32'hACE1ACE1;
    always @(posedge clk) lfsr <= {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};

    task fail(input [1023:0] what);
        begin
            errors = errors + 1;
            if (errors < 20) $display("FAIL at cycle %0d: %0s", cycle, what);
        end
    endtask

    // ---- AXI4-Lite ----
    // handshakes are sampled just after the clock edge, once the DUT's registers have settled
    task tick; begin @(posedge clk); #0.1; end endtask
    task axil_write(input [7:0] a, input [31:0] d);
        begin
            axil_write_resp(a, d, 2'b00);
        end
    endtask
    task axil_write_resp(input [7:0] a, input [31:0] d, input [1:0] resp);
        integer w;
        begin
            @(negedge clk); awaddr = a; wdata = d; awvalid = 1; wvalid = 1;
            w = 0;
            tick; while (!awready && w < 100) begin tick; w = w + 1; end
            if (w == 100) fail("awready never came");
            awvalid = 0; wvalid = 0;
            while (!bvalid && w < 100) begin tick; w = w + 1; end
            if (bresp != resp) fail("write response");
            tick;
        end
    endtask
    task axil_read(input [7:0] a, output [31:0] d);
        integer w;
        begin
            @(negedge clk); araddr = a; arvalid = 1;
            w = 0;
            tick; while (!arready && w < 100) begin tick; w = w + 1; end
            if (w == 100) fail("arready never came");
            arvalid = 0;
            while (!rvalid && w < 100) begin tick; w = w + 1; end
            d = rdata;
            tick;
        end
    endtask

    // ---- output monitor: the pass-through is bit-exact ----
    integer out_byte = 0, out_frame = 0, out_pos = 0, k;
    always @(posedge clk) if (!rst && m_tvalid && m_tready) begin
        for (k = 0; k < 8; k = k + 1) begin
            if (out_pos + k < lens[out_frame]) begin
                if (!m_tkeep[k]) fail("tkeep lost a byte");
                if (m_tdata[8*k +: 8] !== bytes[first_byte[out_frame] + out_pos + k]) fail("pass-through byte differs");
            end else if (m_tkeep[k]) fail("tkeep past the frame's end");
        end
        if (m_tlast !== (out_pos + 8 >= lens[out_frame])) fail("tlast misplaced");
        if (m_tlast) begin out_frame = out_frame + 1; out_pos = 0; end
        else out_pos = out_pos + 8;
    end

    // ---- record monitor ----
    integer nrec = 0, last_seq = -1, gaps = 0;
    reg [63:0] ts0; integer sof0;
    always @(posedge clk) if (!rst && rec_tvalid && rec_tready) begin : rec
        integer seq;
        seq = rec_tdata[239:208];
        if (rec_tdata[255:240] !== 16'h5354) fail("record magic");
        if (seq <= last_seq) fail("record sequence not increasing");
        gaps = gaps + (seq - last_seq - 1);
        last_seq = seq;
        if (rec_tdata[207:64] !== {want[seq][15:0], want[seq][31:16], want[seq][47:32], want[seq][55:48],
                                   want[seq][63:56], want[seq][79:64], want[seq][111:80], want[seq][143:112]}) begin
            fail("record fields differ from the reference model");
            if (errors < 5) $display("  frame %0d: got %h, want %h", seq, rec_tdata[207:64], want[seq]);
        end
        if (nrec == 0) begin ts0 = rec_tdata[63:0]; sof0 = sof_cycle[seq]; end
        else if (rec_tdata[63:0] !== ts0 + 4 * (sof_cycle[seq] - sof0)) fail("timestamp is not the first beat's time");
        nrec = nrec + 1;
    end

    // ---- driver ----
    integer f, b, gap;
    reg [31:0] r;
    reg [63:0] t_before, t_after;
    integer drops_expected;
    reg drive_done = 0;
    reg [63:0] beat_data;
    reg [7:0] beat_keep;
    initial begin
        if (!$value$plusargs("n=%d", nframes)) nframes = 0;
        $readmemh("frames.len", lens, 0, nframes - 1);
        $readmemh("expect.hex", want, 0, nframes - 1);
        nbytes = 0;
        for (f = 0; f < nframes; f = f + 1) begin first_byte[f] = nbytes; nbytes = nbytes + lens[f]; end
        $readmemh("frames.hex", bytes, 0, nbytes - 1);
        repeat (4) @(posedge clk);
        rst = 0;
        axil_read(8'h00, r); if (r !== 32'h53545450) fail("ID register");
        axil_read(8'h04, r); if (r !== 32'h00010000) fail("VERSION register");
        axil_write(8'h14, T0[31:0]);
        axil_write(8'h18, T0[63:32]);
        axil_write(8'h08, 1);
        axil_read(8'h20, r); t_before[31:0] = r; axil_read(8'h24, r); t_before[63:32] = r;
        if (t_before < T0 || t_before > T0 + 1000) fail("time after SET");
        fork
            begin : backpressure
                while (!drive_done) begin
                    @(negedge clk);
                    m_tready = lfsr[3:0] != 0;          // ~94 % ready
                    if (f < nframes - 120) rec_tready = lfsr[7:4] != 0;
                    else if (f < nframes - 60) rec_tready = 0; // a stalled host: the FIFO fills, records drop
                    else rec_tready = 1;
                end
            end
            begin : drive
                for (f = 0; f < nframes; f = f + 1) begin
                    gap = lfsr[9:8] == 0 ? 0 : lfsr[11:10]; // back to back a quarter of the time
                    repeat (gap) @(negedge clk);
                    for (b = 0; b < lens[f]; b = b + 8) begin
                        @(negedge clk);
                        for (k = 0; k < 8; k = k + 1) begin
                            beat_data[8*k +: 8] = b + k < lens[f] ? bytes[first_byte[f] + b + k] : 8'h00;
                            beat_keep[k] = b + k < lens[f];
                        end
                        s_tdata = beat_data;
                        s_tkeep = beat_keep;
                        s_tlast = b + 8 >= lens[f];
                        s_tvalid = 1;
                        // the beat passes at the first edge where s_tready is high; read at the
                        // edge itself, signals still hold what the DUT samples there
                        @(posedge clk);
                        while (!s_tready) @(posedge clk);
                        if (b == 0) sof_cycle[f] = cycle;
                        if (lfsr[15:13] == 0 && !s_tlast) begin @(negedge clk); s_tvalid = 0; @(negedge clk); end
                    end
                    @(negedge clk); s_tvalid = 0; s_tlast = 0;
                end
                repeat (200) @(posedge clk);
                drive_done = 1;
            end
        join
        rec_tready = 1;
        m_tready = 1;
        repeat (50) @(posedge clk);
        if (out_frame != nframes) fail("not every frame came out");
        axil_read(8'h28, r); if (r != nrec) fail("RECORDS register");
        axil_read(8'h2C, r); drops_expected = r; if (r != gaps || r == 0) fail("DROPS register against sequence gaps (and some drops expected)");
        axil_read(8'h30, r); if (r != nframes) fail("FRAMES register");
        if (nrec + gaps != nframes) fail("records + drops != frames");
        axil_read(8'h20, r); t_before[31:0] = r; axil_read(8'h24, r); t_before[63:32] = r;
        axil_write(8'h1C, 32'd1000000);
        axil_read(8'h20, r); t_after[31:0] = r; axil_read(8'h24, r); t_after[63:32] = r;
        if (t_after - t_before < 1000000 || t_after - t_before > 1000000 + 200) fail("ADJ by 1 ms");
        axil_write_resp(8'h40, 0, 2'b10); // no such register: SLVERR
        $display("tb_tap: %0d frames (%0d bytes) passed through bit-exact, %0d records checked, %0d dropped and counted",
                 nframes, nbytes, nrec, drops_expected);
        if (errors == 0) $display("PASS"); else $display("FAIL: %0d errors", errors);
        $finish;
    end
endmodule
