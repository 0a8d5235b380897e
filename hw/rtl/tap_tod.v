// Time of day in nanoseconds, disciplined by software: every clock adds INCR (16.32 fixed
// point ns, so a 322.265625 MHz clock gets 3.103030... ns exactly enough to hold 1 ppb);
// SET loads a time, ADJ adds a signed offset once. Software steers the rate through INCR
// (drift) and the phase through ADJ (offset), as a PTP servo would.
module tap_tod (
    input  wire        clk,
    input  wire        rst,
    input  wire [47:0] incr,      // ns << 32 per clock
    input  wire        set_valid,
    input  wire [63:0] set_ns,
    input  wire        adj_valid,
    input  wire [31:0] adj_ns,    // two's complement
    output wire [63:0] tod_ns
);
    reg [95:0] acc; // ns . frac
    assign tod_ns = acc[95:32];
    always @(posedge clk) begin
        if (rst)
            acc <= 96'd0;
        else if (set_valid)
            acc <= {set_ns, 32'd0};
        else if (adj_valid)
            acc <= acc + {{32{adj_ns[31]}}, adj_ns, 32'd0} + {48'd0, incr};
        else
            acc <= acc + {48'd0, incr};
    end
endmodule
