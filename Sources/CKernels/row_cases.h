// ROW_CASES(CALL): CALL(R) with R the compile-time constant equal to `rows` (1...8), so a register
// block inlined at each call site keeps its accumulators in registers. Shared by the fp32 and int8 GEMMs.
#ifndef HEADTUNE_ROW_CASES_H
#define HEADTUNE_ROW_CASES_H

#define ROW_CASES(CALL)                                                                                          \
    switch (rows) {                                                                                              \
    case 8: CALL(8); break;                                                                                      \
    case 7: CALL(7); break;                                                                                      \
    case 6: CALL(6); break;                                                                                      \
    case 5: CALL(5); break;                                                                                      \
    case 4: CALL(4); break;                                                                                      \
    case 3: CALL(3); break;                                                                                      \
    case 2: CALL(2); break;                                                                                      \
    default: CALL(1); break;                                                                                     \
    }

#endif
