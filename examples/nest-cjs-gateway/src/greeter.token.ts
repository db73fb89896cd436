/** Injection token of the ClientProxy that reaches the greeter service through the relay. */
export const GREETER = 'GREETER';
