/** Reads a password from the terminal without echoing it (or one line of stdin when it is not a terminal). */
import { UsageError } from './args.js';

export function readPasswordFromTty(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    return new Promise((resolve, reject) => {
      let text = '';
      stdin.setEncoding('utf8');
      const onData = (c: string) => {
        text += c;
        const nl = text.indexOf('\n');
        if (nl >= 0) {
          stdin.removeListener('data', onData);
          stdin.pause();
          resolve(text.slice(0, nl).replace(/\r$/, ''));
        }
      };
      stdin.on('data', onData);
      stdin.once('end', () => (text ? resolve(text.replace(/\r?\n$/, '')) : reject(new UsageError('no password given (stdin ended)'))));
    });
  }
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let text = '';
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.resume();
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.removeListener('data', onData);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (s: string) => {
      for (const ch of s) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new UsageError('cancelled'));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else if (ch >= ' ') text += ch;
      }
    };
    stdin.on('data', onData);
  });
}
