# Image for durabull's demo workers. One image, two roles: docker-compose.yml passes --orchestrators-only or
# --activities-only as the command, which is appended to the entrypoint below.
FROM node:20-slim

WORKDIR /app
RUN chown node:node /app
USER node

# The whole repo (see .dockerignore): workspaces are linked by npm ci and run from their TypeScript sources through
# the "source" export condition, so no build step is needed. devDependencies stay installed because tsx is one.
COPY --chown=node:node . .
RUN npm ci --no-audit --no-fund

ENTRYPOINT ["npx", "tsx", "--conditions=source", "apps/demo/src/worker.ts"]
CMD []
