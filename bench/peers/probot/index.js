// The smallest Probot app that does what specbot's intake does before answering: receive a
// signed delivery, verify it, route it to a handler. The handler does nothing.
export default (app) => {
  app.on("issue_comment.created", async () => {});
};
