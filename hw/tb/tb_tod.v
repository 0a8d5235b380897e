// tap_tod alone: a fractional increment accumulates exactly (322.265625 MHz, a 100G MAC's
// clock: 3.103030303... ns per clock, as 16.32 fixed point), SET loads, ADJ moves by a
// signed offset once, and the rate change of INCR takes effect at once. Prints PASS or FAIL.
`timescale 1ns/1ps
module tb_tod;
    reg clk = 0, rst = 1;
    always #1 clk = ~clk;
    reg [47:0] incr = 48'd0;
    reg set_valid = 0, adj_valid = 0;
    reg [63:0] set_ns = 0;
    reg [31:0] adj_ns = 0;
    wire [63:0] tod;
    integer errors = 0, n;
    reg [95:0] model;
    tap_tod dut (.clk(clk), .rst(rst), .incr(incr), .set_valid(set_valid), .set_ns(set_ns),
                 .adj_valid(adj_valid), .adj_ns(adj_ns), .tod_ns(tod));
    task check(input [63:0] want, input [255:0] what);
        begin
            if (tod !== want) begin
                errors = errors + 1;
                $display("FAIL %0s: tod %0d, want %0d", what, tod, want);
            end
        end
    endtask
    initial begin
        // 1e9 / 322.265625e6 ns = 3.103030303...: 16.32 fixed point, rounded
        incr = {16'd3, 32'd442511782};
        @(negedge clk); rst = 0;
        set_ns = 64'd1000000000000; set_valid = 1; @(negedge clk); set_valid = 0;
        model = {set_ns, 32'd0};
        for (n = 0; n < 100000; n = n + 1) begin
            @(negedge clk);
            model = model + {48'd0, incr};
        end
        check(model[95:32], "after 100,000 fractional increments");
        // 100,000 clocks of 3.1030303 ns = 310,303.03 ns: the fraction carried, not lost
        if (model[95:32] - 64'd1000000000000 != 64'd310303) begin
            errors = errors + 1;
            $display("FAIL: the model itself: %0d", model[95:32] - 64'd1000000000000);
        end
        adj_ns = -32'sd5000; adj_valid = 1; @(negedge clk); adj_valid = 0;
        model = model + {48'd0, incr} - {32'd0, 32'd5000, 32'd0};
        check(model[95:32], "after ADJ -5000 ns");
        incr = {16'd4, 32'd0};
        @(negedge clk);
        model = model + {48'd0, incr};
        @(negedge clk);
        model = model + {48'd0, incr};
        check(model[95:32], "after INCR = 4 ns");
        if (errors == 0) $display("PASS"); else $display("FAIL: %0d errors", errors);
        $finish;
    end
endmodule
