// @ts-check
/**
 * max-lines-per-function for spec files: a test case, hook or helper is held
 * to the same bound as the code it tests; a `describe` block (a list of cases,
 * not a function to read as one) is not.
 * @type {import('eslint').Rule.RuleModule}
 */
const rule = {
  meta: {
    type: 'suggestion',
    docs: { description: 'Bounds the lines of every function in a spec file except describe blocks' },
    schema: [{ type: 'object', properties: { max: { type: 'integer', minimum: 1 } }, additionalProperties: false }],
    messages: { tooLong: '{{name}} has {{lines}} lines; at most {{max}} (describe blocks excepted).' },
  },
  create(context) {
    const max = context.options[0]?.max ?? 60;
    /** @param {any} node */
    const isDescribeBlock = node => {
      const call = node.parent;
      if (call?.type !== 'CallExpression' || !call.arguments.includes(node)) return false;
      const callee = call.callee.type === 'CallExpression' ? call.callee.callee : call.callee;
      const base = callee.type === 'MemberExpression' ? callee.object : callee;
      return base.type === 'Identifier' && base.name === 'describe';
    };
    /** @param {any} node */
    const check = node => {
      if (isDescribeBlock(node)) return;
      const lines = node.loc.end.line - node.loc.start.line + 1;
      if (lines <= max) return;
      const name =
        node.id?.name ??
        (node.parent?.type === 'CallExpression' && node.parent.callee.type === 'Identifier'
          ? `The ${node.parent.callee.name}() callback`
          : 'A function');
      context.report({ node, messageId: 'tooLong', data: { name, lines: String(lines), max: String(max) } });
    };
    return { FunctionDeclaration: check, FunctionExpression: check, ArrowFunctionExpression: check };
  },
};

export default { rules: { 'spec-function-lines': rule } };
