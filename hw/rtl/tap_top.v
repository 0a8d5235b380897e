// The timestamping tap: a bump in the wire. Frames pass from s_axis to m_axis through one
// register stage, bit for bit; each frame that passes yields a 256-bit record (format in
// hw/README.md) on rec_axis, through a FIFO; a record that finds the FIFO full is dropped
// and counted, and the records' own sequence numbers let the host see the gap.
module tap_top #(
    parameter FIFO_LOG2 = 4
) (
    input  wire         clk,
    input  wire         rst,
    // frames in
    input  wire [63:0]  s_tdata,
    input  wire [7:0]   s_tkeep,
    input  wire         s_tvalid,
    output wire         s_tready,
    input  wire         s_tlast,
    // frames out
    output reg  [63:0]  m_tdata,
    output reg  [7:0]   m_tkeep,
    output reg          m_tvalid,
    input  wire         m_tready,
    output reg          m_tlast,
    // records out
    output wire [255:0] rec_tdata,
    output wire         rec_tvalid,
    input  wire         rec_tready,
    // AXI4-Lite
    input  wire [7:0]   awaddr,
    input  wire         awvalid,
    output wire         awready,
    input  wire [31:0]  wdata,
    input  wire         wvalid,
    output wire         wready,
    output wire [1:0]   bresp,
    output wire         bvalid,
    input  wire         bready,
    input  wire [7:0]   araddr,
    input  wire         arvalid,
    output wire         arready,
    output wire [31:0]  rdata,
    output wire [1:0]   rresp,
    output wire         rvalid,
    input  wire         rready
);
    // pass-through: one stage, full throughput, back-pressure passed upstream
    assign s_tready = !m_tvalid || m_tready;
    wire beat = s_tvalid && s_tready;
    always @(posedge clk) begin
        if (rst) begin
            m_tvalid <= 1'b0;
        end else if (s_tready) begin
            m_tvalid <= s_tvalid;
            m_tdata <= s_tdata;
            m_tkeep <= s_tkeep;
            m_tlast <= s_tlast;
        end
    end

    wire        enable, set_valid, adj_valid;
    wire [47:0] incr;
    wire [63:0] set_ns, tod_ns;
    wire [31:0] adj_ns;
    reg  [31:0] records, drops, frames, rec_seq;

    tap_tod tod (.clk(clk), .rst(rst), .incr(incr), .set_valid(set_valid), .set_ns(set_ns),
                 .adj_valid(adj_valid), .adj_ns(adj_ns), .tod_ns(tod_ns));

    wire        done;
    wire [63:0] sof_tod;
    wire [31:0] flow_hash, seq;
    wire [15:0] payload_len, sport, dport, frame_len;
    wire [7:0]  tcp_flags, info;
    tap_parser parser (.clk(clk), .rst(rst), .tdata(s_tdata), .tkeep(s_tkeep), .tlast(s_tlast),
                       .beat(beat), .tod_ns(tod_ns), .done(done), .sof_tod(sof_tod),
                       .flow_hash(flow_hash), .seq(seq), .payload_len(payload_len),
                       .tcp_flags(tcp_flags), .sport(sport), .dport(dport),
                       .frame_len(frame_len), .info(info));

    // record FIFO
    localparam DEPTH = 1 << FIFO_LOG2;
    reg [255:0] fifo [0:DEPTH-1];
    reg [FIFO_LOG2:0] wr, rd;
    wire [FIFO_LOG2:0] used = wr - rd;
    wire full = used[FIFO_LOG2]; // used == DEPTH: the only value with the top bit set
    assign rec_tvalid = wr != rd;
    assign rec_tdata = fifo[rd[FIFO_LOG2-1:0]];
    wire [255:0] record = {16'h5354, rec_seq, frame_len, dport, sport, info, tcp_flags,
                           payload_len, seq, flow_hash, sof_tod};

    always @(posedge clk) begin
        if (rst) begin
            wr <= 0; rd <= 0;
            records <= 0; drops <= 0; frames <= 0; rec_seq <= 0;
        end else begin
            if (rec_tvalid && rec_tready) rd <= rd + 1'b1;
            if (done) begin
                frames <= frames + 1;
                if (enable) begin
                    rec_seq <= rec_seq + 1;
                    if (full) begin
                        drops <= drops + 1;
                    end else begin
                        fifo[wr[FIFO_LOG2-1:0]] <= record;
                        wr <= wr + 1'b1;
                        records <= records + 1;
                    end
                end
            end
        end
    end

    tap_regs regs (.clk(clk), .rst(rst), .awaddr(awaddr), .awvalid(awvalid), .awready(awready),
                   .wdata(wdata), .wvalid(wvalid), .wready(wready), .bresp(bresp), .bvalid(bvalid),
                   .bready(bready), .araddr(araddr), .arvalid(arvalid), .arready(arready),
                   .rdata(rdata), .rresp(rresp), .rvalid(rvalid), .rready(rready),
                   .enable(enable), .incr(incr), .set_valid(set_valid), .set_ns(set_ns),
                   .adj_valid(adj_valid), .adj_ns(adj_ns), .tod_ns(tod_ns), .records(records),
                   .drops(drops), .frames(frames));
endmodule
