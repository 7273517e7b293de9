#!/usr/bin/env ruby
# A control-protocol client in Ruby, written from the osctld ClientHandler document (seed 003).
# Runs a fixed scenario against SOCKET_PATH and prints one JSON object with what it saw.
# Scenario: greeting, echo, progress, an unknown command, pipelined commands in one write,
# then "console": the command and the first keys line leave in one write (data in flight),
# the reply is read, and the raw stream is used for keys, a resize and reading the output.
require 'socket'
require 'json'
require 'base64'

sock = UNIXSocket.new(ARGV.fetch(0))
out = {}

def read_msg(sock)
  line = sock.gets or raise 'connection closed'
  JSON.parse(line)
end

# Reads progress updates, then the final reply.
def call(sock, cmd, opts = {})
  sock.write({ cmd: cmd, opts: opts }.to_json + "\n")
  final(sock)
end

def final(sock)
  progress = []
  loop do
    msg = read_msg(sock)
    if msg['status'] == true && msg.key?('progress')
      progress << msg['progress']
    else
      return { 'reply' => msg, 'progress' => progress }
    end
  end
end

out['greeting'] = read_msg(sock)
out['echo'] = call(sock, 'echo', { 'text' => 'héllo', 'n' => [1, 2] })
out['progress'] = call(sock, 'progress', { 'n' => 3 })
out['unknown'] = call(sock, 'no-such-command')
sock.write({ cmd: 'echo', opts: 1 }.to_json + "\n" + { cmd: 'echo', opts: 2 }.to_json + "\n")
out['pipelined'] = [final(sock), final(sock)]
sock.write({ cmd: 'console', opts: { id: 'ct' } }.to_json + "\n" + { keys: Base64.strict_encode64('ls') }.to_json + "\n")
out['console'] = final(sock)
# Raw bytes now. Ruby's IO buffer keeps whatever came with the reply line.
sock.write({ rows: 24, cols: 80 }.to_json + "\n")
buf = +''
buf << sock.readpartial(4096) until buf.include?('size:')
out['console_output'] = buf
sock.close
puts out.to_json
