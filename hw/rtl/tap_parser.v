// Per-frame header parser on a 64-bit AXI4-Stream (byte 0 in tdata[7:0]). Keeps the first 96
// bytes of each frame, enough for Ethernet, two VLAN tags, IPv4 with options or IPv6, and
// TCP up to its flags, then decodes them when the frame's last beat passes. Outputs one
// result per frame (valid for one clock) with the time its first beat passed (sof_tod).
module tap_parser (
    input  wire        clk,
    input  wire        rst,
    input  wire [63:0] tdata,
    input  wire [7:0]  tkeep,
    input  wire        tlast,
    input  wire        beat,       // tvalid && tready: this beat passes now
    input  wire [63:0] tod_ns,
    output reg         done,
    output reg  [63:0] sof_tod,
    output reg  [31:0] flow_hash,
    output reg  [31:0] seq,
    output reg  [15:0] payload_len,
    output reg  [7:0]  tcp_flags,
    output reg  [15:0] sport,
    output reg  [15:0] dport,
    output reg  [15:0] frame_len,
    output reg  [7:0]  info        // bit0 tcp, bit1 ipv6, bit2 vlan, bit3 parse error
);
    localparam HDR = 96;
    reg [7:0]  hdr [0:HDR-1];
    reg [15:0] pos;         // bytes of this frame so far
    reg        in_frame;
    reg [63:0] sof_hold;
    integer i;

    // the bytes of the last beat are not in hdr yet when it passes: decode from a view
    // that includes them
    reg [7:0] v [0:HDR-1];
    integer p;
    always @(*) begin
        p = {16'd0, pos};
        for (i = 0; i < HDR; i = i + 1) begin
            if (i >= p && i < p + 8)
                v[i] = tdata[8*(i-p) +: 8];
            else
                v[i] = hdr[i];
        end
    end

    // byte idx of the kept header, 0 past its end
    function [7:0] at(input [15:0] idx);
        begin
            at = idx < HDR ? v[idx[6:0]] : 8'd0;
        end
    endfunction

    // decode (combinational, used on the last beat)
    reg [15:0] et, l3, l4, ip_total, ip_payload, doff;
    reg        vlan, is_v4, is_v6, is_tcp, err;
    reg [31:0] src32, dst32;
    // tkeep is contiguous from bit 0 (AXI4-Stream packed data): the frame's bytes so far
    wire [15:0] flen = pos + {15'd0, tkeep[0]} + {15'd0, tkeep[1]} + {15'd0, tkeep[2]} +
                       {15'd0, tkeep[3]} + {15'd0, tkeep[4]} + {15'd0, tkeep[5]} +
                       {15'd0, tkeep[6]} + {15'd0, tkeep[7]};
    reg [7:0]  b_ihl, b_doff;
    always @(*) begin
        vlan = 1'b0;
        l3 = 16'd14;
        et = {at(12), at(13)};
        if (et == 16'h88A8 || et == 16'h8100) begin
            vlan = 1'b1;
            et = {at(16), at(17)};
            l3 = 16'd18;
            if (et == 16'h8100) begin
                et = {at(20), at(21)};
                l3 = 16'd22;
            end
        end
        is_v4 = et == 16'h0800;
        is_v6 = et == 16'h86DD;
        b_ihl = 8'd0;
        l4 = 16'd0; ip_total = 16'd0; ip_payload = 16'd0; is_tcp = 1'b0; src32 = 0; dst32 = 0;
        if (is_v4) begin
            b_ihl = at(l3);
            l4 = l3 + {10'd0, b_ihl[3:0], 2'b00};
            ip_total = {at(l3+2), at(l3+3)};
            ip_payload = ip_total - {10'd0, b_ihl[3:0], 2'b00};
            is_tcp = at(l3+9) == 8'd6;
            src32 = {at(l3+12), at(l3+13), at(l3+14), at(l3+15)};
            dst32 = {at(l3+16), at(l3+17), at(l3+18), at(l3+19)};
        end else if (is_v6) begin
            l4 = l3 + 16'd40;
            ip_payload = {at(l3+4), at(l3+5)};
            is_tcp = at(l3+6) == 8'd6;
            src32 = {at(l3+8), at(l3+9), at(l3+10), at(l3+11)} ^ {at(l3+12), at(l3+13), at(l3+14), at(l3+15)} ^
                    {at(l3+16), at(l3+17), at(l3+18), at(l3+19)} ^ {at(l3+20), at(l3+21), at(l3+22), at(l3+23)};
            dst32 = {at(l3+24), at(l3+25), at(l3+26), at(l3+27)} ^ {at(l3+28), at(l3+29), at(l3+30), at(l3+31)} ^
                    {at(l3+32), at(l3+33), at(l3+34), at(l3+35)} ^ {at(l3+36), at(l3+37), at(l3+38), at(l3+39)};
        end
        b_doff = at(l4 + 16'd12);
        doff = is_tcp ? {10'd0, b_doff[7:4], 2'b00} : 16'd0;
        // a TCP header must lie inside what was kept and inside the frame
        err = is_tcp && (l4 + 16'd14 > HDR || l4 + doff > flen || doff < 16'd20 || ip_payload < doff);
    end

    always @(posedge clk) begin
        done <= 1'b0;
        if (rst) begin
            pos <= 16'd0;
            in_frame <= 1'b0;
        end else if (beat) begin
            if (!in_frame) sof_hold <= tod_ns;
            for (i = 0; i < 8; i = i + 1)
                if (p + i < HDR) hdr[p + i] <= tdata[8*i +: 8];
            if (tlast) begin
                done <= 1'b1;
                sof_tod <= in_frame ? sof_hold : tod_ns;
                frame_len <= flen;
                info <= {4'd0, err, vlan, is_v6, is_tcp && !err};
                if (is_tcp && !err) begin
                    sport <= {at(l4), at(l4+1)};
                    dport <= {at(l4+2), at(l4+3)};
                    seq <= {at(l4+4), at(l4+5), at(l4+6), at(l4+7)};
                    tcp_flags <= at(l4+13);
                    payload_len <= ip_payload - doff;
                    // the host computes the same: source ^ destination ^ (sport << 16 | dport)
                    flow_hash <= src32 ^ dst32 ^ {at(l4), at(l4+1), at(l4+2), at(l4+3)};
                end else begin
                    sport <= 16'd0; dport <= 16'd0; seq <= 32'd0; tcp_flags <= 8'd0;
                    payload_len <= 16'd0; flow_hash <= 32'd0;
                end
                pos <= 16'd0;
                in_frame <= 1'b0;
            end else begin
                pos <= pos + 16'd8;
                in_frame <= 1'b1;
            end
        end
    end
endmodule
