import { PacketUsageError } from './errors.js';

/** Armchair's packet type table (the protocol's default registry): name → type byte. */
export const ARMCHAIR_PACKET_TYPES: Readonly<Record<string, number>> = {
  init: 0x00,
  close: 0x01,
  error: 0x02,
  ready: 0x03,
  transfer: 0x04,
  init_containers: 0x05,
  sending_files: 0x06,
  pause: 0x07,
  stop: 0x08,
  continue: 0x09,
  stopped: 0x0a,
  loc_req: 0x0b,
  loc_resp: 0x0c,
  home: 0x0d,
  make: 0x0e,
  mix: 0x0f,
  save: 0x10,
};

/** Armchair's urgent ("ghost") types: sent at once, outside the window, without a new id. */
export const ARMCHAIR_URGENT_TYPES: readonly string[] = ['continue', 'stopped', 'loc_resp', 'loc_req', 'save', 'error'];

/** @deprecated use `ARMCHAIR_PACKET_TYPES` */
export const SEED_PACKET_TYPES = ARMCHAIR_PACKET_TYPES;
/** @deprecated use `ARMCHAIR_URGENT_TYPES` */
export const SEED_URGENT_TYPES = ARMCHAIR_URGENT_TYPES;

/** Types the protocol itself relies on; they must stay registered. */
const REQUIRED = ['error', 'ready', 'sending_files'] as const;

/**
 * A bidirectional registry of packet types (name ↔ byte) plus the set of urgent types.
 * `new PacketTypes()` holds Armchair's table; register application types with `register`.
 */
export class PacketTypes {
  private readonly byName = new Map<string, number>();
  private readonly byByte = new Map<number, string>();
  private readonly urgentNames = new Set<string>();

  constructor(options: { types?: Readonly<Record<string, number>>; urgent?: readonly string[] } = {}) {
    for (const [name, byte] of Object.entries(options.types ?? ARMCHAIR_PACKET_TYPES)) this.register(name, byte);
    for (const name of REQUIRED) {
      if (!this.byName.has(name)) throw new PacketUsageError('WK_PACKET_TYPE', `packet type registry must define '${name}'`);
    }
    for (const name of options.urgent ?? ARMCHAIR_URGENT_TYPES) this.setUrgent(name, true);
  }

  /** Adds a type. Throws when the name or the byte is already taken. */
  register(name: string, byte: number, options: { urgent?: boolean } = {}): this {
    if (!Number.isInteger(byte) || byte < 0 || byte > 255) throw new PacketUsageError('WK_PACKET_TYPE', `packet type byte ${byte} is not in 0..255`);
    if (this.byName.has(name)) throw new PacketUsageError('WK_PACKET_TYPE', `packet type '${name}' is already registered`);
    const other = this.byByte.get(byte);
    if (other !== undefined) throw new PacketUsageError('WK_PACKET_TYPE', `packet type byte 0x${byte.toString(16)} is already used by '${other}'`);
    this.byName.set(name, byte);
    this.byByte.set(byte, name);
    if (options.urgent) this.setUrgent(name, true);
    return this;
  }

  /** Makes a type urgent (or not). `ready` can never be urgent. */
  setUrgent(name: string, urgent: boolean): this {
    this.byteOf(name);
    if (name === 'ready' && urgent) throw new PacketUsageError('WK_PACKET_TYPE', "'ready' cannot be urgent");
    if (urgent) this.urgentNames.add(name);
    else this.urgentNames.delete(name);
    return this;
  }

  /** The byte of a type name; throws `PacketUsageError` for an unknown name. */
  byteOf(name: string): number {
    const b = this.byName.get(name);
    if (b === undefined) throw new PacketUsageError('WK_PACKET_TYPE', `unknown packet type '${name}'`);
    return b;
  }

  /** The name of a type byte, or `undefined`. */
  nameOf(byte: number): string | undefined {
    return this.byByte.get(byte);
  }

  /** True for urgent ("ghost") types. */
  isUrgent(name: string): boolean {
    return this.urgentNames.has(name);
  }

  /** All registered names. */
  names(): string[] {
    return [...this.byName.keys()];
  }
}
