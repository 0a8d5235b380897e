/* `strobe tokenize`: text on stdin, token ids on stdout, for checking strobe's tokenizer
 * against other implementations. */
#ifndef STROBE_TOKENIZE_CMD_H
#define STROBE_TOKENIZE_CMD_H

int tokenize_main(int argc, char **argv);

#endif
