# luacluster in a container, built from this tree on Debian 12 (not built
# in CI):
#   docker build -t luacluster .
#   docker run --rm -p 8080:8080 -p 9100:9100 luacluster
# serves apps/server.lua on every core, metrics on :9100/metrics. Your own
# app: mount or COPY it and pass its path, e.g.
#   docker run --rm -p 8080:8080 -v $PWD:/app luacluster -w max /app/app.lua
FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
      pkg-config luajit2 libluajit2-5.1-dev libuv1-dev lua-cjson-dev \
      libhttp-parser-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLC_FUZZ=OFF \
 && cmake --build build -j"$(nproc)" --target luacluster_cli \
 && cmake --install build --prefix /usr/local

# LuaJIT, libuv and http-parser are linked in: the binary needs libc only.
FROM debian:12-slim
COPY --from=build /usr/local/bin/luacluster /usr/local/bin/luacluster
COPY --from=build /usr/local/share/man/man1/luacluster.1 /usr/local/share/man/man1/
COPY apps/server.lua /app/server.lua
ENV PORT=8080
EXPOSE 8080 9100
# The master is PID 1: SIGTERM (docker stop) is its graceful stop; give it
# --kill-timeout and a little more (docker stop -t).
STOPSIGNAL SIGTERM
ENTRYPOINT ["luacluster"]
CMD ["-w", "max", "--metrics", "0.0.0.0:9100", "/app/server.lua"]
