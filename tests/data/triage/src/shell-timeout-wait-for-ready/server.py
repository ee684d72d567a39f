import http.server
import pathlib


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")


server = http.server.HTTPServer(("127.0.0.1", 8080), Handler)
server.serve_forever()
pathlib.Path("server.ready").write_text("ready")
