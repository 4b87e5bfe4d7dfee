/* X-macro tables of the IR's operators and functions: IR_OP(name, spelling, arity). */
#ifndef IR_OP
#define IR_OP(name, spelling, arity)
#endif
IR_OP(NEG, "-", 1)
IR_OP(ADD, "+", 2)
IR_OP(SUB, "-", 2)
IR_OP(MUL, "*", 2)
IR_OP(DIV, "/", 2)
IR_OP(RELU, "relu", 1)
IR_OP(SIGMOID, "sigmoid", 1)
IR_OP(TANH, "tanh", 1)
IR_OP(EXP, "exp", 1)
IR_OP(SQRT, "sqrt", 1)
IR_OP(MAX, "max", 2)
IR_OP(MIN, "min", 2)
#undef IR_OP
