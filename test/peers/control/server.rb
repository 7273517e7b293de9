#!/usr/bin/env ruby
# A control-protocol server in Ruby, written from the osctld ClientHandler document (seed 003):
# greeting {version}, then {cmd, opts} lines answered with zero or more {status: true, progress}
# and a final {status: true, response} or {status: false, message}. The "console" command replies
# and then hijacks the socket: it reads {"keys": base64} / {"rows", "cols"} lines and writes raw
# terminal bytes. Usage: server.rb SOCKET_PATH  (prints "READY" when listening)
require 'socket'
require 'json'
require 'base64'

path = ARGV.fetch(0)
File.unlink(path) if File.exist?(path)
server = UNIXServer.new(path)
$stdout.sync = true
puts 'READY'

def send_data(sock, data)
  sock.write(data.to_json + "\n")
end

def console(sock)
  sock.write('PROMPT$ ')
  while (line = sock.gets)
    msg = JSON.parse(line)
    if msg['keys']
      sock.write("echo:#{Base64.strict_decode64(msg['keys'])};")
    elsif msg['rows']
      sock.write("size:#{msg['rows']}x#{msg['cols']};")
    end
  end
  sock.close
end

def handle(sock)
  send_data(sock, { version: '2.3.4' })
  while (line = sock.gets)
    begin
      req = JSON.parse(line)
    rescue JSON::ParserError
      send_data(sock, { status: false, message: 'syntax error, expected a valid JSON' })
      next
    end
    opts = req['opts'] || {}
    case req['cmd']
    when 'echo'
      send_data(sock, { status: true, response: opts })
    when 'progress'
      opts.fetch('n', 3).times { |i| send_data(sock, { status: true, progress: "step #{i + 1}" }) }
      send_data(sock, { status: true, response: 'finished' })
    when 'fail'
      send_data(sock, { status: false, message: 'container not found' })
    when 'console'
      send_data(sock, { status: true, response: 'continue' })
      return console(sock) # hijacked: the line protocol is over
    else
      send_data(sock, { status: false, message: "unsupported command '#{req['cmd']}'" })
    end
  end
  sock.close
rescue Errno::EPIPE, Errno::ECONNRESET
  nil
end

loop do
  client = server.accept
  Thread.new(client) { |c| handle(c) }
end
