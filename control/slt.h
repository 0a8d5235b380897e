/* `strobe slt`: argument parsing and orchestration of a System Load Test run. */
#ifndef STROBE_SLT_H
#define STROBE_SLT_H

/* argv[0] is "slt". Returns the process exit status. */
int slt_main(int argc, char **argv);

#endif
