/**
 * The opcodes of Python's pickle format (protocols 0 to 5) that wirekit reads or writes, and the
 * ones it always refuses. Names as in CPython's `pickletools`.
 */

// Control and stack.
export const PROTO = 0x80;
export const FRAME = 0x95;
export const STOP = 0x2e; // .
export const MARK = 0x28; // (
export const POP = 0x30; // 0
export const POP_MARK = 0x31; // 1
export const DUP = 0x32; // 2

// Scalars.
export const NONE = 0x4e; // N
export const NEWTRUE = 0x88;
export const NEWFALSE = 0x89;
export const INT = 0x49; // I
export const BININT = 0x4a; // J
export const BININT1 = 0x4b; // K
export const BININT2 = 0x4d; // M
export const LONG = 0x4c; // L
export const LONG1 = 0x8a;
export const LONG4 = 0x8b;
export const FLOAT = 0x46; // F
export const BINFLOAT = 0x47; // G

// Strings and bytes.
export const STRING = 0x53; // S
export const BINSTRING = 0x54; // T
export const SHORT_BINSTRING = 0x55; // U
export const UNICODE = 0x56; // V
export const BINUNICODE = 0x58; // X
export const SHORT_BINUNICODE = 0x8c;
export const BINUNICODE8 = 0x8d;
export const BINBYTES = 0x42; // B
export const SHORT_BINBYTES = 0x43; // C
export const BINBYTES8 = 0x8e;
export const BYTEARRAY8 = 0x96;

// Containers.
export const EMPTY_LIST = 0x5d; // ]
export const LIST = 0x6c; // l
export const APPEND = 0x61; // a
export const APPENDS = 0x65; // e
export const EMPTY_TUPLE = 0x29; // )
export const TUPLE = 0x74; // t
export const TUPLE1 = 0x85;
export const TUPLE2 = 0x86;
export const TUPLE3 = 0x87;
export const EMPTY_DICT = 0x7d; // }
export const DICT = 0x64; // d
export const SETITEM = 0x73; // s
export const SETITEMS = 0x75; // u
export const EMPTY_SET = 0x8f;
export const ADDITEMS = 0x90;
export const FROZENSET = 0x91;

// Memo.
export const PUT = 0x70; // p
export const BINPUT = 0x71; // q
export const LONG_BINPUT = 0x72; // r
export const MEMOIZE = 0x94;
export const GET = 0x67; // g
export const BINGET = 0x68; // h
export const LONG_BINGET = 0x6a; // j

/** Opcodes that import, call or build objects, or reach outside the pickle: always refused. */
export const REFUSED: Readonly<Record<number, string>> = {
  0x63: 'GLOBAL (imports a name)',
  0x93: 'STACK_GLOBAL (imports a name)',
  0x52: 'REDUCE (calls an object)',
  0x62: 'BUILD (sets object state)',
  0x69: 'INST (imports and calls a class)',
  0x6f: 'OBJ (calls a class)',
  0x81: 'NEWOBJ (calls cls.__new__)',
  0x92: 'NEWOBJ_EX (calls cls.__new__)',
  0x82: 'EXT1 (imports from the extension registry)',
  0x83: 'EXT2 (imports from the extension registry)',
  0x84: 'EXT4 (imports from the extension registry)',
  0x50: 'PERSID (persistent id lookup)',
  0x51: 'BINPERSID (persistent id lookup)',
  0x97: 'NEXT_BUFFER (out-of-band buffer)',
  0x98: 'READONLY_BUFFER (out-of-band buffer)',
};
