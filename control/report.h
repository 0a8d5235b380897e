/* `strobe report RUN_DIR... -o OUT_DIR`: runs side by side, HTML with gnuplot charts. */
#ifndef STROBE_REPORT_H
#define STROBE_REPORT_H

/* argv[0] is "report". Returns the process exit status. */
int report_main(int argc, char **argv);

#endif
