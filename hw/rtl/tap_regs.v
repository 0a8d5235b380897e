// AXI4-Lite register block of the tap (32-bit registers; map in hw/README.md). Writes take
// the address and data channels together; reads of TIME_LO latch TIME_HI, so software reads
// one consistent 64-bit time.
module tap_regs (
    input  wire        clk,
    input  wire        rst,
    // AXI4-Lite slave
    input  wire [7:0]  awaddr,
    input  wire        awvalid,
    output reg         awready,
    input  wire [31:0] wdata,
    input  wire        wvalid,
    output reg         wready,
    output reg  [1:0]  bresp,
    output reg         bvalid,
    input  wire        bready,
    input  wire [7:0]  araddr,
    input  wire        arvalid,
    output reg         arready,
    output reg  [31:0] rdata,
    output reg  [1:0]  rresp,
    output reg         rvalid,
    input  wire        rready,
    // to and from the tap
    output reg         enable,
    output reg  [47:0] incr,
    output reg         set_valid,
    output reg  [63:0] set_ns,
    output reg         adj_valid,
    output reg  [31:0] adj_ns,
    input  wire [63:0] tod_ns,
    input  wire [31:0] records,
    input  wire [31:0] drops,
    input  wire [31:0] frames
);
    localparam ID = 32'h53545450; // "STTP"
    localparam VERSION = 32'h00010000;
    reg [31:0] set_lo, time_hi_latched;

    always @(posedge clk) begin
        set_valid <= 1'b0;
        adj_valid <= 1'b0;
        if (rst) begin
            awready <= 1'b0; wready <= 1'b0; bvalid <= 1'b0; bresp <= 2'b00;
            arready <= 1'b0; rvalid <= 1'b0; rresp <= 2'b00; rdata <= 32'd0;
            enable <= 1'b0;
            incr <= {16'd4, 32'd0}; // 4 ns per clock (250 MHz) until software says otherwise
            set_lo <= 32'd0;
            time_hi_latched <= 32'd0;
        end else begin
            // write: both channels at once, one response
            awready <= 1'b0;
            wready <= 1'b0;
            if (awvalid && wvalid && !bvalid && !awready) begin
                awready <= 1'b1;
                wready <= 1'b1;
                bvalid <= 1'b1;
                bresp <= 2'b00;
                case (awaddr)
                    8'h08: enable <= wdata[0];
                    8'h0C: incr[31:0] <= wdata;
                    8'h10: incr[47:32] <= wdata[15:0];
                    8'h14: set_lo <= wdata;
                    8'h18: begin set_ns <= {wdata, set_lo}; set_valid <= 1'b1; end
                    8'h1C: begin adj_ns <= wdata; adj_valid <= 1'b1; end
                    default: bresp <= 2'b10; // SLVERR: no such register
                endcase
            end else if (bvalid && bready) begin
                bvalid <= 1'b0;
            end
            // read
            arready <= 1'b0;
            if (arvalid && !rvalid && !arready) begin
                arready <= 1'b1;
                rvalid <= 1'b1;
                rresp <= 2'b00;
                case (araddr)
                    8'h00: rdata <= ID;
                    8'h04: rdata <= VERSION;
                    8'h08: rdata <= {31'd0, enable};
                    8'h0C: rdata <= incr[31:0];
                    8'h10: rdata <= {16'd0, incr[47:32]};
                    8'h20: begin rdata <= tod_ns[31:0]; time_hi_latched <= tod_ns[63:32]; end
                    8'h24: rdata <= time_hi_latched;
                    8'h28: rdata <= records;
                    8'h2C: rdata <= drops;
                    8'h30: rdata <= frames;
                    default: begin rdata <= 32'd0; rresp <= 2'b10; end
                endcase
            end else if (rvalid && rready) begin
                rvalid <= 1'b0;
            end
        end
    end
endmodule
